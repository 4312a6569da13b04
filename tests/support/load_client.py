"""A burst of HTTP requests sent from a process of its own.

The client is not what a load test measures: in a process of its own it never holds the test
process's interpreter lock (which a server in a thread there needs), and it speaks HTTP/1.1 by
hand, at a tenth of httpx's CPU per request, so that on a small machine it takes little from the
server. Run as ``python -m tests.support.load_client`` with a JSON plan on stdin, it sends every
request at once, each on a connection of its own, and writes one JSON answer per request, in the
plan's order, to stdout. ``run_burst`` does that from a test.
"""

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
# Guards against a hang only.
BURST_TIMEOUT_SECONDS = 300.0
_KEPT_HEADERS = ("retry-after", "idempotency-replayed")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any = None


@dataclass(frozen=True)
class Answer:
    """A response, or ``status`` 0 and ``error`` naming the transport failure."""

    status: int
    body: Any
    headers: dict[str, str]
    error: str | None = None

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


def run_burst(base_url: str, calls: list[Call]) -> list[Answer]:
    """Send ``calls`` all at once from a separate process; their answers, in order."""
    plan = {
        "base_url": base_url,
        "calls": [
            {"method": c.method, "path": c.path, "headers": c.headers, "body": c.body}
            for c in calls
        ],
    }
    finished = subprocess.run(
        [sys.executable, "-m", "tests.support.load_client"],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=BURST_TIMEOUT_SECONDS,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"the load client failed:\n{finished.stderr[-4000:]}")
    return [Answer(**answer) for answer in json.loads(finished.stdout)]


async def _send(host: str, port: int, call: dict[str, Any]) -> dict[str, Any]:
    try:
        async with asyncio.timeout(BURST_TIMEOUT_SECONDS):
            status, headers, body = await _exchange(host, port, call)
    except (OSError, TimeoutError, ValueError, IndexError) as exc:
        return {"status": 0, "body": None, "headers": {}, "error": repr(exc)}
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = body.decode(errors="replace")
    kept = {name: headers[name] for name in _KEPT_HEADERS if name in headers}
    return {"status": status, "body": parsed, "headers": kept, "error": None}


async def _exchange(
    host: str, port: int, call: dict[str, Any]
) -> tuple[int, dict[str, str], bytes]:
    """One request on a connection of its own, read to the server's close (measured here: a
    thousand requests through httpx cost 2.5 s of CPU, this 0.4 s)."""
    payload = b"" if call["body"] is None else json.dumps(call["body"]).encode()
    head = [f"{call['method']} {call['path']} HTTP/1.1", f"Host: {host}:{port}"]
    head += [f"{name}: {value}" for name, value in call["headers"].items()]
    if call["body"] is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    head.append("Connection: close")
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    raw_head, _, body = response.partition(b"\r\n\r\n")
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        raise ValueError("a chunked response: not one the app sends for these routes")
    return status, headers, body


async def _burst(plan: dict[str, Any]) -> list[dict[str, Any]]:
    parts = urlsplit(plan["base_url"])
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    return list(await asyncio.gather(*(_send(host, port, call) for call in plan["calls"])))


def main() -> None:
    plan = json.load(sys.stdin)
    json.dump(asyncio.run(_burst(plan)), sys.stdout)


if __name__ == "__main__":
    main()
