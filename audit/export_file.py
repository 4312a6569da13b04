"""Audit export files: their form, and their offline check with no database.

The rows are shaped by PostgreSQL (``audit.export_copy``); this module wraps them in the file
(header, checksums, manifest) and checks files, whoever wrote them.

A file holds one line per event, in id order, in the chained form (every field the hash covers,
the personal values while they are held, ``prev_hash`` and ``hash``), then one manifest line:

- ndjson: each event is a JSON object; the last line is ``{"manifest": {...}}``.
- csv: a header row (``COLUMNS``), one row per event, the last line ``#manifest {...}``. Cells
  holding ``changes`` and ``personal`` are canonical JSON, booleans are ``true``/``false``, and an
  empty cell is null (an empty cell in a nullable text column may also stand for an empty string;
  the checker tries that reading before calling the row altered).

Lines end with ``\\n``. The manifest is canonical JSON (sorted keys, no spaces) with ``format``,
``rows``, ``sha256`` (of every byte before the manifest line, the CSV header included),
``chain_start`` (the hash the oldest remaining event links to), ``chain_head`` (the workspace's
head when the export was taken: the hash of the export's own ``audit.export`` event),
``complete_chain`` (no filter: the rows are the whole chain from start to head), ``filters``,
``exported_at``, ``workspace``, ``export_version`` and ``manifest_sha256`` (of the canonical
manifest without that key).

Each row must hash to its own ``hash``; in a complete chain each must also link to the previous
one, from ``chain_start`` to ``chain_head``. A filtered file is a selection, not a chain, so only
its rows' own hashes, the row count and the digest are checked. The checksums catch accidental
damage and any edit that leaves them stale; a forger who recomputes them all is caught only by
comparing ``chain_head`` with a head known independently (the ``X-Audit-Chain-Head`` header,
``GET /audit/verify`` later, a copy kept elsewhere): pass it as ``expected_head``.
"""

import hashlib
import itertools
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from audit.chain import canonical
from audit.export_rows import (
    COLUMNS,
    Invalid,
    RowChecker,
    check_csv_rows,
    check_ndjson_rows,
    decoded,
)


class ExportFormat(StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"


EXPORT_VERSION = 1
CSV_MANIFEST_PREFIX = b"#manifest "
CHUNK_BYTES = 64 * 1024
_CSV_HEADER = (",".join(COLUMNS) + "\n").encode()
_MANIFEST_TYPES: dict[str, type] = {
    "format": str,
    "export_version": int,
    "workspace": str,
    "rows": int,
    "sha256": str,
    "chain_start": str,
    "chain_head": str,
    "complete_chain": bool,
    "filters": dict,
    "exported_at": str,
    "manifest_sha256": str,
}
_MANIFEST_KEYS = frozenset(_MANIFEST_TYPES)


class ExportWriter:
    """Wraps rows, already in the file's form, into the file: counts and hashes as it goes."""

    def __init__(self, export_format: ExportFormat) -> None:
        self.format = export_format
        self.rows = 0
        self._digest = hashlib.sha256()

    def header(self) -> bytes:
        return self._counted(_CSV_HEADER if self.format is ExportFormat.CSV else b"")

    def row(self, line: bytes) -> bytes:
        """One event's line, ending in ``\\n``."""
        self.rows += 1
        return self._counted(line)

    def manifest(
        self,
        *,
        workspace: str,
        chain_start: str,
        chain_head: str,
        complete_chain: bool,
        filters: Mapping[str, Any],
        exported_at: str,
    ) -> bytes:
        manifest: dict[str, Any] = {
            "format": self.format.value,
            "export_version": EXPORT_VERSION,
            "workspace": workspace,
            "rows": self.rows,
            "sha256": self._digest.hexdigest(),
            "chain_start": chain_start,
            "chain_head": chain_head,
            "complete_chain": complete_chain,
            "filters": dict(filters),
            "exported_at": exported_at,
        }
        manifest["manifest_sha256"] = manifest_digest(manifest)
        if self.format is ExportFormat.CSV:
            return CSV_MANIFEST_PREFIX + canonical(manifest).encode() + b"\n"
        return canonical({"manifest": manifest}).encode() + b"\n"

    def _counted(self, data: bytes) -> bytes:
        self._digest.update(data)
        return data


def export_chunks(
    lines: Iterable[bytes],
    export_format: ExportFormat,
    *,
    workspace: str,
    chain_start: str,
    chain_head: str,
    complete_chain: bool,
    filters: Mapping[str, Any],
    exported_at: str,
    chunk_bytes: int = CHUNK_BYTES,
) -> Iterator[bytes]:
    """The whole file around ``lines`` (one per event, in the file's form), in chunks of about
    ``chunk_bytes``, holding one chunk at a time."""
    writer = ExportWriter(export_format)
    buffer = bytearray(writer.header())
    for line in lines:
        buffer += writer.row(line)
        if len(buffer) >= chunk_bytes:
            yield bytes(buffer)
            buffer.clear()
    buffer += writer.manifest(
        workspace=workspace,
        chain_start=chain_start,
        chain_head=chain_head,
        complete_chain=complete_chain,
        filters=filters,
        exported_at=exported_at,
    )
    yield bytes(buffer)


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """The manifest's own checksum: SHA-256 of its canonical JSON without ``manifest_sha256``."""
    body = {key: value for key, value in manifest.items() if key != "manifest_sha256"}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class FileVerdict:
    """What checking a file found. ``rows`` counts the rows read before a verdict was reached."""

    valid: bool
    rows: int
    reason: str
    first_bad_line: int | None = None
    first_invalid_id: int | None = None
    format: str | None = None
    chain_head: str | None = None
    complete_chain: bool | None = None


class _Lines:
    """The file's lines but the last, hashed as they pass; the last one is kept as the manifest."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()
        self.count = 0  # lines handed out so far, so the number of the last one handed out
        self.last: bytes | None = None

    def __iter__(self) -> Iterator[bytes]:
        held: bytes | None = None
        for line in self._stream:
            if held is not None:
                self.digest.update(held)
                self.count += 1
                yield held
            held = line
        self.last = held


def verify_export(
    source: str | Path | IO[bytes], *, expected_head: str | None = None
) -> FileVerdict:
    """Check an export file (a path, ``-`` for stdin, or a binary stream) in constant memory."""
    if isinstance(source, str | Path):
        if str(source) == "-":
            return _verify_stream(sys.stdin.buffer, expected_head)
        with open(source, "rb") as stream:
            return _verify_stream(stream, expected_head)
    return _verify_stream(source, expected_head)


def _verify_stream(stream: IO[bytes], expected_head: str | None) -> FileVerdict:
    lines = _Lines(stream)
    rows = RowChecker()
    export_format: ExportFormat | None = None
    try:
        export_format = _read_rows(lines, rows)
        if lines.last is None:
            raise Invalid("the file is empty")
        manifest = _read_manifest(lines.last, export_format, lines.count + 1)
        _check_totals(manifest, rows, lines, expected_head)
    except Invalid as bad:
        return FileVerdict(
            False,
            rows.count,
            bad.reason,
            first_bad_line=bad.line,
            first_invalid_id=bad.event_id,
            format=export_format,
        )
    complete = manifest["complete_chain"]
    scope = "a complete chain" if complete else "a filtered selection; each row's hash checked"
    return FileVerdict(
        True,
        rows.count,
        f"{rows.count} events verified, {scope}",
        format=export_format,
        chain_head=manifest["chain_head"],
        complete_chain=complete,
    )


def _read_rows(lines: _Lines, rows: RowChecker) -> ExportFormat:
    """Check every row line; tell which format the file is in."""
    stream = iter(lines)
    first = next(stream, None)
    if first is None:
        return ExportFormat.NDJSON  # a lone line: the manifest check says what is wrong with it
    if not decoded(first, lines.count).startswith("{"):
        if first != _CSV_HEADER:
            raise Invalid("the first line is neither an event nor the CSV header", 1)
        check_csv_rows(stream, lines, rows)
        return ExportFormat.CSV
    check_ndjson_rows(itertools.chain([first], stream), lines, rows)
    return ExportFormat.NDJSON


def _read_manifest(line: bytes, export_format: ExportFormat, number: int) -> dict[str, Any]:
    missing = Invalid("the manifest line is missing: the file is truncated or not an export")
    if not line.endswith(b"\n"):
        raise missing
    body = line[:-1]
    if export_format is ExportFormat.CSV:
        if not body.startswith(CSV_MANIFEST_PREFIX):
            raise missing
        body = body[len(CSV_MANIFEST_PREFIX) :]
    try:
        parsed = json.loads(body)
    except ValueError as exc:
        raise missing from exc
    if export_format is ExportFormat.NDJSON:
        if not isinstance(parsed, dict) or set(parsed) != {"manifest"}:
            raise missing
        manifest = parsed["manifest"]
        written = canonical({"manifest": manifest}).encode()
    else:
        manifest = parsed
        written = canonical(manifest).encode()
    if not isinstance(manifest, dict) or set(manifest) != _MANIFEST_KEYS:
        raise Invalid("the manifest does not have the expected fields", number)
    if not all(_is(manifest[key], kind) for key, kind in _MANIFEST_TYPES.items()):
        raise Invalid("a manifest field has the wrong type", number)
    if manifest["export_version"] != EXPORT_VERSION:
        raise Invalid(f"export version {manifest['export_version']} is not one this checker reads")
    if written != body or manifest["manifest_sha256"] != manifest_digest(manifest):
        raise Invalid("the manifest was altered", number)
    if manifest["format"] != export_format:
        raise Invalid(f"the manifest names {manifest['format']!r} but the file is {export_format}")
    return manifest


def _is(value: Any, kind: type) -> bool:
    # bool is an int to isinstance; a count of rows is not a boolean.
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _check_totals(
    manifest: Mapping[str, Any], rows: RowChecker, lines: _Lines, expected_head: str | None
) -> None:
    if manifest["rows"] != rows.count:
        raise Invalid(f"the manifest counts {manifest['rows']} rows, the file holds {rows.count}")
    if manifest["sha256"] != lines.digest.hexdigest():
        raise Invalid("the rows' SHA-256 differs from the manifest's")
    if manifest["complete_chain"]:
        if manifest["filters"]:
            raise Invalid("the manifest claims a complete chain for a filtered export")
        if rows.first_break is not None:
            line, event_id = rows.first_break
            raise Invalid("an event does not link to the one before it", line, event_id)
        if rows.count == 0:
            if manifest["chain_start"] != manifest["chain_head"]:
                raise Invalid("the file holds no events, yet its chain start is not its head")
        elif rows.first_prev != manifest["chain_start"]:
            raise Invalid("the first event does not link to the chain's start")
        elif rows.last_hash != manifest["chain_head"]:
            raise Invalid("the last event is not the chain head the manifest names")
    if expected_head is not None and manifest["chain_head"] != expected_head:
        raise Invalid("the chain head differs from the one expected")
