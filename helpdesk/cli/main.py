"""The `helpdesk` command: serve, migrate, database URL, workspaces, operators, demo; the jobs
and audit groups live in modules of their own."""

import logging
import logging.config
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table

from helpdesk.cli.audit import audit_app
from helpdesk.cli.console import EXIT_UNUSABLE, LOGGING, err, fail, open_runtime, out
from helpdesk.cli.jobs import jobs_app
from helpdesk.cli.worker import worker
from helpdesk.core.db import transaction
from helpdesk.core.errors import AppError
from helpdesk.core.settings import get_settings
from helpdesk.migrate import may_migrate, public_is_current, upgrade_public
from helpdesk.runtime import Runtime

app = typer.Typer(no_args_is_help=True, help="Helpdesk: multi-tenant support ticketing.")
db_app = typer.Typer(no_args_is_help=True, help="Database helpers.")
tenants_app = typer.Typer(no_args_is_help=True, help="Manage workspaces.")
operators_app = typer.Typer(no_args_is_help=True, help="Manage platform operators.")
app.add_typer(db_app, name="db")
app.add_typer(tenants_app, name="tenants")
app.add_typer(operators_app, name="operators")
app.add_typer(jobs_app, name="jobs")
app.add_typer(audit_app, name="audit")
app.command()(worker)


def _migrate_all(runtime: Runtime, concurrency: int, slugs: list[str] | None = None) -> bool:
    from tenants.migrations import migrate_tenants

    failures = []
    # As the owner role; everything else runs as the service (README "Database roles").
    owner = runtime.owner_engine()
    try:
        if runtime.owner_database_url is None and not may_migrate(owner):
            # DATABASE_URL names the service, and no owner URL is given: nothing to do if the
            # database is current; otherwise say who must migrate.
            if public_is_current(owner):
                err.print("migrations skipped: DATABASE_URL's role is not the owner")
                return True
            err.print(
                "[red]error:[/] the database is behind and DATABASE_URL's role cannot migrate "
                "it: set HELPDESK_OWNER_DATABASE_URL (README, Database roles)"
            )
            return False
        upgrade_public(owner)
        with Progress(console=err, transient=False) as progress:
            task = progress.add_task("tenant schemas", total=None)

            def on_plan(total: int) -> None:
                # Nothing behind is a finished bar, not one stuck at 0%.
                progress.update(task, total=total or 1, completed=0 if total else 1)

            def on_result(result: object) -> None:
                progress.advance(task)

            results = migrate_tenants(
                owner,
                slugs=slugs,
                concurrency=concurrency,
                on_plan=on_plan,
                on_result=on_result,
            )
    finally:
        owner.dispose()
    for result in results:
        if not result.ok:
            failures.append(result)
            err.print(
                f"[red]failed[/] {result.slug}: revision {result.failed_revision}: {result.error}"
            )
    upgraded = sum(1 for r in results if r.upgraded)
    skipped = [r for r in results if r.skipped]
    summary = f"migrated public; {upgraded} tenant schema(s) upgraded, {len(failures)} failed"
    if skipped:
        # Another migrate had them (a second deploy step, say): not failures, and not done here.
        summary += f", {len(skipped)} left to another run ({skipped[0].slug}: {skipped[0].skipped})"
    err.print(summary)
    return not failures


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


# What every worker process serves: the ASGI factory reads its database URL from the environment.
ASGI_FACTORY = "helpdesk.asgi:create"


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """``values`` in this process's environment (which worker processes inherit) for the block."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


def proxy_options(trusted: Sequence[str]) -> dict[str, Any]:
    """uvicorn's proxy-header options for HELPDESK_TRUSTED_PROXIES: X-Forwarded-For (and
    -Proto) believed only from those peers, and not read at all when none is named. uvicorn's
    own default trusts loopback, so a client on this machine, or behind a proxy that appends to
    the header rather than replacing it, would choose the address the audit trail records."""
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": list(trusted)}


def _serve_http(
    database_url: str,
    *,
    host: str,
    port: int,
    workers: int,
    grace: int,
    trusted_proxies: Sequence[str] = (),
    run_jobs: bool = True,
) -> None:
    """Serve the ASGI factory on ``workers`` processes until SIGTERM or Ctrl-C, each of which
    stops accepting, lets in-flight requests finish for up to ``grace`` seconds, then returns.
    ``run_jobs``: each process also runs the scheduled jobs (HELPDESK_WORKER)."""
    import uvicorn

    options: dict[str, Any] = {
        **proxy_options(trusted_proxies),
        "factory": True,
        "host": host,
        "port": port,
        "timeout_graceful_shutdown": grace,
        "log_config": LOGGING,
        "log_level": "warning",
        # The app logs one line per request itself (helpdesk.access).
        "access_log": False,
    }
    # The workers find the database through the environment: in development it is the embedded
    # server this process started, and each worker is a fresh interpreter (spawned, not forked).
    with _environment(HELPDESK_DATABASE_URL=database_url, HELPDESK_WORKER=str(run_jobs).lower()):
        if workers > 1:
            # uvicorn's supervisor takes SIGTERM and SIGINT over from here on: it passes them
            # to every worker, each drains as below, and it returns once all have exited.
            uvicorn.run(ASGI_FACTORY, workers=workers, **options)
            return
        server = uvicorn.Server(uvicorn.Config(ASGI_FACTORY, **options))

        # While serving, uvicorn's own handlers drain; before they are installed a SIGTERM or
        # Ctrl-C makes the server stop as soon as it has started, and after the drain uvicorn
        # re-raises the signal to this handler, where it is already dealt with: the command
        # ends normally (exit code 0) and the embedded server, if any, is stopped.
        def stop(_signum: int, _frame: object) -> None:
            server.should_exit = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        server.run()
        if not server.started:
            raise typer.Exit(EXIT_UNUSABLE)


@app.command()
def serve(
    demo: Annotated[bool, typer.Option(help="Seed a demo workspace and print its logins.")] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="Worker processes serving requests.")
    ] = 1,
    no_worker: Annotated[
        bool,
        typer.Option(
            "--no-worker",
            help="Run no scheduled jobs here (escalation, auto-close, delivery, retention): "
            "for deployments that run `helpdesk worker` apart.",
        ),
    ] = False,
) -> None:
    """Start the API (an embedded PostgreSQL too, when DATABASE_URL is unset) and, in each
    process, the scheduled jobs."""
    logging.config.dictConfig(LOGGING)
    # Until the server is up, SIGTERM ends the command like Ctrl-C does, through the context
    # managers, so an embedded server started here is stopped on the way out.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with open_runtime() as runtime:
        # Once, here, rather than in every worker.
        if not _migrate_all(runtime, concurrency=4):
            err.print("[yellow]warning:[/] some tenant schemas are behind; see above")
        if demo:
            from helpdesk.demo import seed_demo

            table = Table("email", "password", "role", "workspace", title="Demo logins")
            for login in seed_demo(runtime.sessions):
                table.add_row(login.email, login.password, login.role, login.tenant or "(platform)")
            out.print(table)
        database_url = runtime.engine.url.render_as_string(hide_password=False)
        # The workers open their own pools; this process keeps none while it supervises.
        runtime.engine.dispose()
        run_jobs = runtime.settings.worker and not no_worker
        jobs = "on in each" if run_jobs else "off"
        err.print(
            f"serving http://{host}:{port} with {workers} worker process(es);"
            f" scheduled jobs {jobs}",
            soft_wrap=True,  # one line, for whoever greps the log
        )
        err.print(f"web console: http://{host}:{port}/app/  (API docs: /docs)")
        _serve_http(
            database_url,
            host=host,
            port=port,
            workers=workers,
            grace=runtime.settings.shutdown_grace_seconds,
            trusted_proxies=runtime.settings.trusted_proxies,
            run_jobs=run_jobs,
        )


@app.command()
def migrate(
    concurrency: Annotated[int, typer.Option(min=1, max=32, help="Tenant schemas at a time.")] = 4,
    tenant: Annotated[list[str] | None, typer.Option(help="Only these workspace slugs.")] = None,
) -> None:
    """Upgrade the public schema, then every tenant schema that is behind."""
    with open_runtime() as runtime:
        ok = _migrate_all(runtime, concurrency, tenant)
    raise typer.Exit(0 if ok else 1)


@db_app.command("url")
def db_url() -> None:
    """Print the database URL the service uses."""
    with open_runtime() as runtime:
        out.print(runtime.engine.url.render_as_string(hide_password=True), soft_wrap=True)


@tenants_app.command("create")
def tenants_create(
    slug: str,
    name: Annotated[str, typer.Option(help="Display name.")],
    admin_email: Annotated[str, typer.Option(help="The first admin's email.")],
    admin_password_stdin: Annotated[
        bool, typer.Option(help="Read the admin password from stdin.")
    ] = False,
) -> None:
    """Provision a workspace with its first admin."""
    from auth.passwords import hash_password
    from helpdesk.workspaces.service import create_workspace

    password_hash = hash_password(_read_password(admin_password_stdin, admin_email))
    with open_runtime() as runtime:
        try:
            with transaction(runtime.sessions) as session:
                create_workspace(
                    session,
                    slug=slug,
                    name=name,
                    admin_email=admin_email,
                    admin_password_hash=password_hash,
                )
        except AppError as exc:
            fail(exc)
    out.print(f"created workspace {slug}")


@tenants_app.command("list")
def tenants_list() -> None:
    """List workspaces."""
    from tenants.registry import list_tenants

    with open_runtime() as runtime, transaction(runtime.sessions) as session:
        table = Table("slug", "name", "status", "created")
        for tenant in list_tenants(session, limit=100_000):
            table.add_row(tenant.slug, tenant.name, tenant.status, tenant.created_at.isoformat())
        out.print(table)


def _set_status(slug: str, status: str) -> None:
    from helpdesk.workspaces.service import update_workspace
    from tenants.models import TenantStatus

    with open_runtime() as runtime:
        try:
            with transaction(runtime.sessions) as session:
                update_workspace(session, slug, status=TenantStatus(status), name=None)
        except AppError as exc:
            fail(exc)
    out.print(f"{slug}: {status}")


@tenants_app.command("suspend")
def tenants_suspend(slug: str) -> None:
    """Suspend a workspace: every request to it answers 403."""
    _set_status(slug, "suspended")


@tenants_app.command("resume")
def tenants_resume(slug: str) -> None:
    """Resume a suspended workspace."""
    _set_status(slug, "active")


@tenants_app.command("delete")
def tenants_delete(slug: str) -> None:
    """Schedule a workspace's deletion (data kept for the grace period)."""
    from helpdesk.workspaces.service import schedule_workspace_deletion

    with open_runtime() as runtime:
        try:
            with transaction(runtime.sessions) as session:
                tenant = schedule_workspace_deletion(session, slug)
                when = tenant.delete_after
        except AppError as exc:
            fail(exc)
    out.print(f"{slug}: deletion scheduled; data kept until {when}")


@tenants_app.command("purge")
def tenants_purge(
    slug: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Drop a workspace's schema, role and data now. Irreversible."""
    from helpdesk.workspaces.service import purge_workspace

    if not yes:
        typer.confirm(f"Drop workspace {slug} and all its data?", abort=True)
    with open_runtime() as runtime:
        try:
            with transaction(runtime.sessions) as session:
                purge_workspace(session, slug)
        except AppError as exc:
            fail(exc)
    out.print(f"{slug}: purged")


def _read_password(from_stdin: bool, email: str) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    from auth.passwords import password_problem

    problem = password_problem(password, email=email)
    if problem:
        err.print(f"[red]error:[/] {problem}")
        raise typer.Exit(2)
    return password


@operators_app.command("create")
def operators_create(
    email: str,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
) -> None:
    """Create a platform operator (there is no default operator)."""
    from auth.users import create_user, find_user_by_email

    password = _read_password(password_stdin, email)
    with open_runtime() as runtime, transaction(runtime.sessions) as session:
        if find_user_by_email(session, email) is not None:
            err.print(f"[red]error:[/] a user with the email {email} exists already")
            raise typer.Exit(1)
        create_user(
            session,
            email=email,
            name=name or email.split("@", maxsplit=1)[0],
            password=password,
            is_operator=True,
        )
    out.print(f"created operator {email}")


def _set_operator_disabled(email: str, *, disabled: bool) -> None:
    from audit.platform import record_platform_event
    from auth.users import find_operator, set_operator_disabled

    with open_runtime() as runtime, transaction(runtime.sessions) as session:
        operator = find_operator(session, email)
        if operator is None:
            err.print(f"[red]error:[/] there is no operator with the email {email}")
            raise typer.Exit(1)
        set_operator_disabled(session, operator, disabled=disabled)
        record_platform_event(
            session,
            action="operator.disable" if disabled else "operator.enable",
            target_type="user",
            target_id=str(operator.id),
            details={"email": operator.email, "by": "cli"},
        )
    out.print(f"operator {email}: {'disabled' if disabled else 'enabled'}")


@operators_app.command("disable")
def operators_disable(email: str) -> None:
    """Disable an operator: their tokens are refused from the next request, and their sessions
    end (enabling them again revives none)."""
    _set_operator_disabled(email, disabled=True)


@operators_app.command("enable")
def operators_enable(email: str) -> None:
    """Enable a disabled operator again; they sign in anew."""
    _set_operator_disabled(email, disabled=False)
