"""Which webhook URLs point, on their face, outside the public internet (SSRF)."""

import socket
from typing import Any

import pytest

from helpdesk.webhooks.addresses import literal_address_problem, resolved_address_problem

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.9.9.9:8080/hook",
        "http://localhost:8000/hook",
        "http://LOCALHOST./hook",
        "http://api.localhost/hook",
        "http://10.0.0.5/hook",
        "http://172.16.3.4/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::5]/hook",
        "http://[::ffff:10.0.0.5]/hook",
    ],
)
def test_a_non_public_host_is_named_in_the_refusal(url: str) -> None:
    problem = literal_address_problem(url)
    assert problem is not None
    assert "address" in problem or "network" in problem


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/helpdesk", "https://93.184.216.34/hook", "http://[2606:4700::1]/"],
)
def test_a_public_host_or_a_name_passes_the_literal_check(url: str) -> None:
    assert literal_address_problem(url) is None


# (what the name resolves to, refused?): DNS is outside the system, so the test answers for it.
RESOLUTIONS = [
    (["10.0.0.5"], True),
    (["93.184.216.34", "192.168.1.10"], True),  # one private answer is enough to refuse
    (["169.254.169.254"], True),
    (["::1"], True),
    (["93.184.216.34"], False),
    (["2606:4700::1"], False),
]


@pytest.mark.parametrize(("addresses", "refused"), RESOLUTIONS)
def test_a_name_that_resolves_to_a_non_public_address_is_refused_at_delivery(
    monkeypatch: pytest.MonkeyPatch, addresses: list[str], refused: bool
) -> None:
    def resolve(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        assert host == "hooks.example.com"
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 443))
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    problem = resolved_address_problem("https://hooks.example.com/helpdesk")
    assert (problem is not None) == refused
    if refused:
        assert "resolves to a non-public address" in str(problem)
