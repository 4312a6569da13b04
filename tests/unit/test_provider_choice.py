"""Which PostgreSQL the suite uses: TEST_DATABASE_URL, else Docker, else embedded."""

import socket

import pytest

from tests.support.postgres import (
    ProviderError,
    choose_provider,
    database_prefix,
    docker_available,
    template_name,
    worker_database_name,
)

pytestmark = pytest.mark.unit

URL = "postgresql://u:p@db.example:5432/postgres"


@pytest.mark.parametrize(
    ("env", "docker", "expected"),
    [
        ({"TEST_DATABASE_URL": URL}, True, "url"),
        ({"TEST_DATABASE_URL": URL}, False, "url"),
        ({}, True, "docker"),
        ({}, False, "embedded"),
        ({"HELPDESK_TEST_PG": "embedded", "TEST_DATABASE_URL": URL}, True, "embedded"),
        ({"HELPDESK_TEST_PG": "docker"}, False, "docker"),
        ({"HELPDESK_TEST_PG": "url", "TEST_DATABASE_URL": URL}, False, "url"),
    ],
)
def test_provider_chain(env: dict[str, str], docker: bool, expected: str) -> None:
    assert choose_provider(env, lambda: docker) == expected


def test_url_provider_does_not_probe_docker() -> None:
    def probe() -> bool:
        raise AssertionError("Docker must not be probed when a URL is given")

    assert choose_provider({"TEST_DATABASE_URL": URL}, probe) == "url"


@pytest.mark.parametrize(
    "env",
    [{"HELPDESK_TEST_PG": "sqlite"}, {"HELPDESK_TEST_PG": "url"}],
    ids=["unknown", "url-without-url"],
)
def test_a_bad_forced_provider_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ProviderError):
        choose_provider(env, lambda: False)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_engine_that_does_not_answer_means_no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    # A refused connection, not a time-out: the fallback to embedded must not wait on Docker.
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{_closed_port()}")
    assert docker_available() is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ("helpdesk_test_template", "helpdesk_test_gw0")),
        ({"HELPDESK_TEST_DB_PREFIX": "ci_42"}, ("ci_42_template", "ci_42_gw0")),
    ],
)
def test_database_names_come_from_the_prefix(
    env: dict[str, str], expected: tuple[str, str]
) -> None:
    prefix = database_prefix(env)
    assert (template_name(prefix), worker_database_name(prefix, "gw0")) == expected


@pytest.mark.parametrize("prefix", ["Upper", "1st", "has-dash", "x" * 41, 'q"uote'])
def test_a_bad_database_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ProviderError, match="HELPDESK_TEST_DB_PREFIX"):
        database_prefix({"HELPDESK_TEST_DB_PREFIX": prefix})
