"""Which PostgreSQL the suite uses: TEST_DATABASE_URL, else Docker, else embedded."""

import pytest

from tests.support.postgres import ProviderError, choose_provider

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
