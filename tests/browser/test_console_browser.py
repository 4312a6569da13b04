"""The console in real headless Chromium against a served app on real PostgreSQL: each kind of
user's main path, found by visible labels and roles as a person would, every page checked with
axe-core and photographed."""

import re
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import check_page, sign_in
from tests.support.factories import Factory, Workspace
from tests.support.live_server import LiveServer

# One worker runs them all: one Chromium, one served app.
pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.xdist_group("browser")]


def _ticket(served: LiveServer, headers: dict[str, str], title: str, customer: str) -> int:
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        response = http.post(
            "/api/v1/tickets",
            json={
                "title": title,
                "description": "It stopped working this morning.",
                "priority": "high",
                "customer_email": customer,
                "customer_name": "Carla Customer",
            },
            headers=headers,
        )
    assert response.status_code == 201, response.text
    ticket_id: int = response.json()["id"]
    return ticket_id


def test_an_agent_finds_a_ticket_by_search_replies_assigns_and_resolves_it(
    page: Page, served: LiveServer, factory: Factory, ws: Workspace
) -> None:
    agent = factory.member(ws, "agent")
    colleague = factory.member(ws, "agent")
    word = f"zebra{uuid.uuid4().hex[:6]}"
    headers = factory.headers(ws.admin, ws)
    wanted = _ticket(served, headers, f"VPN {word} drops every hour", "carla@example.com")
    _ticket(served, headers, "Invoice address is wrong", "dan@example.com")

    sign_in(page, ws, agent)
    expect(page.get_by_role("heading", name="Work queue")).to_be_visible()
    check_page(page, "agent-queue")

    page.get_by_label("Search").fill(word)
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name=re.compile(word))).to_be_visible()
    expect(page.get_by_role("link", name="Invoice address is wrong")).to_have_count(0)
    check_page(page, "agent-search")

    page.get_by_role("link", name=re.compile(word)).click()
    expect(page).to_have_url(re.compile(f"/app/tickets/{wanted}$"))
    check_page(page, "agent-ticket")

    page.get_by_label("Message").fill("We are on it; please restart the client meanwhile.")
    page.get_by_role("button", name="Send").click()
    reply = page.locator("article.comment.public")
    expect(reply).to_contain_text("please restart the client")
    expect(reply).to_contain_text("Public reply")

    page.get_by_label("Message").fill("Looks like the gateway's DHCP lease.")
    page.get_by_label("Internal note").check()
    page.get_by_role("button", name="Send").click()
    expect(page.locator("article.comment.internal")).to_contain_text("DHCP lease")

    # A colleague is chosen by name; then the agent takes the ticket back.
    page.get_by_label("Assignee").select_option(f"agent user ({colleague.email})")
    page.get_by_role("button", name="Assign").click()
    expect(page.locator("#ticket-assignee")).to_have_text("agent user")
    page.get_by_label("Assignee").select_option("me")
    page.get_by_role("button", name="Assign").click()
    expect(page.locator("#ticket-assignee")).to_have_text("You")

    page.get_by_label("Status").select_option("resolved")
    page.get_by_role("button", name="Change status").click()
    expect(page.locator("#ticket-status")).to_have_text("resolved")
    check_page(page, "agent-ticket-resolved")

    # The API sees what the console did.
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        ticket = http.get(f"/api/v1/tickets/{wanted}", headers=headers).json()
    assert ticket["status"] == "resolved"
    assert ticket["assignee_id"] == str(agent.user_id)

    page.get_by_role("link", name="Carla Customer").click()
    check_page(page, "agent-customer")
    page.get_by_label("Phone").fill("202 555 0143")
    page.get_by_label("Tier", exact=True).select_option("premium")
    page.get_by_role("button", name="Save customer").click()
    expect(page.get_by_role("status")).to_have_text("Customer saved.")
    expect(page.locator("#customer-tier")).to_have_text("premium")
    expect(page.locator("#customer-phone")).to_have_text("+12025550143")

    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("img", name=re.compile("tickets opened and solved"))).to_be_visible()
    expect(page.get_by_text("2 opened, 1 solved.")).to_be_visible()
    check_page(page, "agent-dashboard")


def test_an_admin_invites_a_member_who_sets_a_password_and_creates_a_custom_role(
    page: Page, browser: Browser, served: LiveServer, ws: Workspace
) -> None:
    sign_in(page, ws, ws.admin)
    page.get_by_role("link", name="Members").click()
    check_page(page, "admin-members")

    newcomer = f"new-{uuid.uuid4().hex[:6]}@example.com"
    page.get_by_label("E-mail").fill(newcomer)
    page.get_by_label("Name").fill("Nora Newcomer")
    page.get_by_label("Role", exact=True).select_option("agent")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("status")).to_contain_text(f"{newcomer} is invited")
    link = page.get_by_label("One-time link").input_value()
    check_page(page, "admin-invited")

    # The newcomer opens the link in a browser of their own and sets a password.
    other = browser.new_context(base_url=served.base_url)
    try:
        invited = other.new_page()
        invited.goto(link)
        check_page(invited, "invitation-accept")
        invited.get_by_label("New password").fill("a long and unusual passphrase")
        invited.get_by_role("button", name="Set password").click()
        expect(invited.get_by_role("status")).to_contain_text("Your password is set")
    finally:
        other.close()

    page.get_by_role("link", name="Roles").click()
    check_page(page, "admin-roles")
    page.get_by_label("Role name").fill("triage")
    page.get_by_label("tickets.read", exact=True).check()
    page.get_by_label("tickets.update", exact=True).check()
    page.get_by_role("button", name="Create role").click()
    expect(page.get_by_role("columnheader", name="triage")).to_be_visible()
    expect(page.get_by_role("heading", name="Edit triage")).to_be_visible()
    check_page(page, "admin-roles-custom")


def test_an_admin_changes_settings_and_routing_and_adds_a_webhook(
    page: Page, factory: Factory, ws: Workspace
) -> None:
    agent = factory.member(ws, "agent")
    sign_in(page, ws, ws.admin)
    page.get_by_role("link", name="Settings").click()
    check_page(page, "admin-settings")
    page.get_by_label("High", exact=True).fill("2")
    page.get_by_label("Assign new tickets to the least-loaded agent").check()
    page.get_by_label("Assign automatically only tickets of this priority or higher").select_option(
        "medium"
    )
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("status")).to_have_text("Settings saved.")
    expect(page.get_by_label("High", exact=True)).to_have_value("2.0")
    expect(page.get_by_label("Assign new tickets to the least-loaded agent")).to_be_checked()
    expect(
        page.get_by_label("Assign automatically only tickets of this priority or higher")
    ).to_have_value("medium")

    page.get_by_role("link", name="set members' skills and seniority").click()
    row = page.get_by_role("row", name=re.compile(re.escape(agent.email)))
    row.get_by_label(f"Skills of {agent.email}").fill("billing, VPN")
    row.get_by_label("Senior").check()
    row.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Routing saved.")
    expect(row.get_by_label(f"Skills of {agent.email}")).to_have_value("billing, vpn")
    expect(row.get_by_label("Senior")).to_be_checked()
    check_page(page, "admin-routing")

    page.get_by_role("link", name="workspace settings").click()

    page.get_by_role("link", name="Change the targets of each customer tier").click()
    premium = page.get_by_role("group", name="Premium tier")
    premium.get_by_label("Critical first response").fill("0.25")
    page.get_by_role("button", name="Save tier targets").click()
    expect(page.get_by_role("status")).to_have_text("Tier targets saved.")
    expect(premium.get_by_label("Critical first response")).to_have_value("0.25")
    check_page(page, "admin-tiers")

    page.get_by_role("link", name="Webhooks").click()
    page.get_by_label("URL (https)").fill("http://127.0.0.1:9/hook")
    page.get_by_label("Signing secret").fill("a-shared-secret")
    page.get_by_label("ticket.created").check()
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_role("cell", name="http://127.0.0.1:9/hook", exact=True)).to_be_visible()
    check_page(page, "admin-webhooks")


def test_the_last_admin_rule_is_shown_as_a_clear_message(
    page: Page, served: LiveServer, factory: Factory, ws: Workspace
) -> None:
    # A custom role holding everything an admin holds may move admins; the workspace's only
    # admin still cannot be demoted, and the service's sentence says why.
    with httpx.Client(base_url=served.base_url, timeout=30) as http:
        admin = http.get("/api/v1/roles", headers=factory.headers(ws.admin, ws)).json()
        permissions = next(r for r in admin["items"] if r["name"] == "admin")["permissions"]
        created = http.post(
            "/api/v1/roles",
            json={"name": "people-ops", "permissions": permissions},
            headers=factory.headers(ws.admin, ws),
        )
    assert created.status_code == 201, created.text
    lead = factory.member(ws, "people-ops")
    sign_in(page, ws, lead)
    page.get_by_role("link", name="Members").click()
    page.get_by_label(f"Role of {ws.admin.email}").select_option("agent")
    page.get_by_role("row", name=re.compile(re.escape(ws.admin.email))).get_by_role(
        "button", name="Change"
    ).click()
    expect(page.get_by_role("alert")).to_have_text(
        "Cannot demote the last admin of this workspace; make another member admin first."
    )
    check_page(page, "admin-last-admin")


def test_a_compliance_officer_verifies_the_chain_downloads_an_export_and_erases_a_subject(
    page: Page, served: LiveServer, factory: Factory, ws: Workspace, tmp_path: Path
) -> None:
    officer = factory.member(ws, "compliance")
    subject = f"subject-{uuid.uuid4().hex[:6]}@example.com"
    _ticket(served, factory.headers(ws.admin, ws), "Please delete my data", subject)

    sign_in(page, ws, officer)
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    check_page(page, "compliance-audit")

    page.get_by_label("Action").fill("ticket.create")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("cell", name="ticket.create")).to_have_count(1)

    page.get_by_role("link", name="Verify the chain").click()
    expect(page.locator("#verdict")).to_contain_text("The chain is intact")
    expect(page.locator("#chain-head")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    check_page(page, "compliance-verify")

    page.get_by_role("link", name="Back to the audit log").click()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download NDJSON").click()
    saved = tmp_path / "audit.ndjson"
    download.value.save_as(saved)
    lines = saved.read_text().splitlines()
    assert len(lines) >= 2
    assert '"chain_head"' in lines[-1]

    # Waited for: right after a download the old document still answers, and axe would run
    # on it while the GDPR page replaces it (CI saw document null).
    with page.expect_navigation(url="**/app/gdpr**"):
        page.get_by_role("link", name="GDPR").click()
    check_page(page, "compliance-gdpr")
    page.get_by_label("E-mail to erase").fill(subject)
    page.get_by_label("Confirmation").fill("yes please")
    page.get_by_role("button", name="Erase").click()
    expect(page.get_by_role("alert")).to_contain_text(f'type "erase {subject}"')

    page.go_back()
    page.get_by_label("E-mail to erase").fill(subject)
    page.get_by_label("Confirmation").fill(f"erase {subject}")
    page.get_by_role("button", name="Erase").click()
    expect(page.locator("#erased")).to_contain_text("1 customer record(s), 1 ticket(s)")
    check_page(page, "compliance-erased")

    page.get_by_role("link", name="Retention").click()
    page.get_by_role("button", name="Dry run").click()
    expect(page.locator("#report")).to_contain_text("Dry run: would remove")
    expect(page.get_by_role("button", name="Run for real")).to_be_visible()
    check_page(page, "compliance-retention")


def test_a_viewer_sees_no_admin_pages_and_is_refused_them(
    page: Page, factory: Factory, ws: Workspace
) -> None:
    viewer = factory.member(ws, "viewer")
    sign_in(page, ws, viewer)
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link", name="Tickets")).to_be_visible()
    for hidden in ("Members", "Roles", "Audit log", "GDPR", "Retention"):
        expect(navigation.get_by_role("link", name=hidden)).to_have_count(0)
    response = page.goto("/app/members")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("permission")
    check_page(page, "viewer-refused")


def test_a_customer_has_the_portal_only(page: Page, factory: Factory, ws: Workspace) -> None:
    customer = factory.member(ws, "customer")
    sign_in(page, ws, customer)
    expect(page).to_have_url(re.compile("/app/portal$"))
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link")).to_have_count(1)
    page.get_by_label("Subject").fill("My printer is jammed")
    page.get_by_label("Describe the problem").fill("Paper stuck in tray 2.")
    page.get_by_role("button", name="Open request").click()
    expect(page.get_by_role("heading", name=re.compile("My printer is jammed"))).to_be_visible()
    page.get_by_label("Your reply").fill("It is the HP on floor 3.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator("article.comment")).to_contain_text("floor 3")
    check_page(page, "customer-ticket")
    page.get_by_role("link", name="All my requests").click()
    check_page(page, "customer-portal")
    response = page.goto("/app/audit")
    assert response is not None
    assert response.status == 403


def test_the_sign_in_page_and_sign_out(page: Page, ws: Workspace) -> None:
    page.goto("/app/signin")
    check_page(page, "signin")
    page.get_by_label("Workspace").fill(ws.slug)
    page.get_by_label("E-mail").fill(ws.admin.email)
    page.get_by_label("Password").fill("wrong password here")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("incorrect")
    check_page(page, "signin-refused")
    sign_in(page, ws, ws.admin)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile("/app/signin$"))
    page.goto("/app/tickets")
    expect(page).to_have_url(re.compile("/app/signin$"))

    page.get_by_role("link", name="Forgot your password?").click()
    check_page(page, "forgot-password")
    page.get_by_label("Workspace").fill(ws.slug)
    page.get_by_label("E-mail").fill(ws.admin.email)
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("status")).to_contain_text("on its way")
