"""`helpdesk serve` hands uvicorn HELPDESK_TRUSTED_PROXIES and nothing more generous: uvicorn's
own default believes X-Forwarded-For from loopback."""

from typing import Any

import pytest

from helpdesk.cli import main

pytestmark = pytest.mark.unit


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    ("trusted", "proxy_headers"),
    [([], False), (["10.0.0.7"], True), (["10.0.0.0/8", "::1"], True)],
)
def test_serve_gives_uvicorn_only_the_trusted_proxies(
    monkeypatch: pytest.MonkeyPatch, trusted: list[str], proxy_headers: bool
) -> None:
    import uvicorn

    seen: dict[str, Any] = {}

    def config(app: str, **options: Any) -> None:
        seen.update(options)
        raise _Stop

    monkeypatch.setattr(uvicorn, "Config", config)
    with pytest.raises(_Stop):
        main._serve_http(
            "postgresql://service@db.example/helpdesk",
            host="127.0.0.1",
            port=8000,
            workers=1,
            grace=1,
            trusted_proxies=trusted,
        )
    assert seen["proxy_headers"] is proxy_headers
    assert seen["forwarded_allow_ips"] == trusted
