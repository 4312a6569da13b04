"""``helpdesk audit``: check an export file offline, or a workspace's chain in the database."""

from pathlib import Path
from typing import Annotated

import typer

from helpdesk.cli.console import EXIT_UNUSABLE, open_runtime

audit_app = typer.Typer(no_args_is_help=True, help="Audit trails: verify exports and chains.")

# Exit codes: 0 valid, 1 invalid, 2 could not check (no such file or workspace, bad setup).
_VALID, _INVALID, _UNCHECKED = 0, 1, EXIT_UNUSABLE


@audit_app.command("verify-file")
def verify_file(
    file: Annotated[
        Path, typer.Argument(help="An export from GET /audit/export (ndjson or csv); - for stdin.")
    ],
    head: Annotated[
        str | None,
        typer.Option(
            help="The chain head you hold from elsewhere (the export's X-Audit-Chain-Head "
            "header, a later GET /audit/verify): the file must end there."
        ),
    ] = None,
) -> None:
    """Check an audit export with no database: every row's hash, the chain's links when the
    export is unfiltered, and the manifest's row count and SHA-256."""
    from audit.export_file import verify_export

    if str(file) != "-" and not file.is_file():
        typer.echo(f"error: no such file: {file}", err=True)
        raise typer.Exit(_UNCHECKED)
    verdict = verify_export(file, expected_head=head)
    if verdict.valid:
        typer.echo(f"valid: {verdict.reason}; chain head {verdict.chain_head}")
        raise typer.Exit(_VALID)
    where = ""
    if verdict.first_bad_line is not None:
        where = f" (line {verdict.first_bad_line}"
        if verdict.first_invalid_id is not None:
            where += f", event {verdict.first_invalid_id}"
        where += ")"
    typer.echo(f"INVALID: {verdict.reason}{where}")
    raise typer.Exit(_INVALID)


@audit_app.command("verify")
def verify_tenant(
    tenant: Annotated[str, typer.Option(help="The workspace's slug.")],
) -> None:
    """Walk a workspace's hash chain in the database, as GET /audit/verify does; the check is
    itself recorded in the trail (audit.verify, by system:cli)."""
    from audit.queries import verify_workspace
    from audit.trail import Actor, record_event
    from helpdesk.core.db import tenant_transaction, transaction
    from helpdesk.core.errors import NotFound
    from helpdesk.streaming import tenant_snapshot
    from tenants.registry import get_by_slug, to_ref

    with open_runtime() as runtime:
        try:
            with transaction(runtime.sessions) as session:
                ref = to_ref(get_by_slug(session, tenant))
        except NotFound as exc:
            typer.echo(f"error: {exc.detail}", err=True)
            raise typer.Exit(_UNCHECKED) from exc
        with tenant_snapshot(runtime.sessions, ref) as session:
            verdict = verify_workspace(session)
        # Not in the snapshot: an append must read the live head, under the chain's lock.
        with tenant_transaction(runtime.sessions, ref.schema_name, ref.role_name) as session:
            record_event(
                session,
                actor=Actor.system("cli"),
                action="audit.verify",
                target_type="audit_event",
                changes={"valid": verdict.valid, "events_checked": verdict.events_checked},
            )
    if verdict.valid:
        typer.echo(f"valid: {verdict.events_checked} events checked; chain head {verdict.head}")
        raise typer.Exit(_VALID)
    typer.echo(
        f"INVALID: the chain breaks at event {verdict.first_invalid_id}"
        f" ({verdict.events_checked} events checked)"
    )
    raise typer.Exit(_INVALID)
