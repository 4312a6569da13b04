"""Helpers for console tests driven over HTTP (no browser): sign in, read a form's CSRF token."""

import re

from fastapi.testclient import TestClient

from tests.support.factories import Member, Workspace

ORIGIN = "http://testserver"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page holds no form with a CSRF token"
    return found.group(1)


def sign_in(client: TestClient, workspace: Workspace, member: Member) -> str:
    """Sign ``member`` in through the console's form; the CSRF token of the session."""
    response = client.post(
        "/app/signin",
        data={"workspace": workspace.slug, "email": member.email, "password": member.password},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = client.get("/app/tickets" if member.role != "compliance" else "/app/audit")
    return csrf_of(page.text)
