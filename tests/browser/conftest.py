"""A served app on real PostgreSQL and Debian's headless Chromium driven by Playwright.

No browser is downloaded: Playwright drives the system's ``chromium`` (``apt-get install
chromium``; ``.ci/run`` installs it). Where it is missing the browser tests are skipped with
that instruction. Each page visited is checked with axe-core (shipped inside
``axe-playwright-python``) and photographed to ``build/screenshots/`` (``make screenshots``
sets ``HELPDESK_SCREENSHOTS=docs/screenshots``).
"""

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from helpdesk.app import create_app
from helpdesk.runtime import Runtime
from tests.support.factories import Member, Workspace
from tests.support.live_server import LiveServer, live_server

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
SCREENSHOTS = Path(os.environ.get("HELPDESK_SCREENSHOTS", "build/screenshots"))
# axe-core impacts that fail a page; "moderate" and "minor" are reported, not failed.
BLOCKING_IMPACTS = {"serious", "critical"}


def chromium_path() -> str | None:
    override = os.environ.get("HELPDESK_CHROMIUM")
    if override:
        return override
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


# Module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is started, and later tests on the same xdist worker call asyncio.run().
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if chromium_path() is None:
        pytest.skip(
            "Chromium is not installed: `apt-get install -y chromium` (Debian) to run the "
            "console's browser tests (or set HELPDESK_CHROMIUM to a Chromium binary)."
        )
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
    launched = playwright.chromium.launch(
        executable_path=chromium_path(), args=["--no-sandbox", "--disable-dev-shm-usage"]
    )
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def served(service_runtime: Runtime) -> Iterator[LiveServer]:
    with live_server(create_app(service_runtime)) as server:
        yield server


@pytest.fixture
def page(browser: Browser, served: LiveServer) -> Iterator[Page]:
    context = browser.new_context(base_url=served.base_url, accept_downloads=True)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


_axe = Axe()


def check_page(page: Page, name: str) -> None:
    """The page passes axe-core with no serious or critical violation; keep a screenshot."""
    page.wait_for_load_state("load")
    results = _axe.run(page)
    blocking = [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v.get("impact") in BLOCKING_IMPACTS
    ]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    assert blocking == [], f"{name}: {blocking}"


def sign_in(page: Page, workspace: Workspace, member: Member) -> None:
    page.goto("/app/signin")
    page.get_by_label("Workspace").fill(workspace.slug)
    page.get_by_label("E-mail").fill(member.email)
    page.get_by_label("Password").fill(member.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/app/(?!signin)"))
