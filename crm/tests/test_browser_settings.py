"""Settings on a phone in a real browser: the tabs wrap onto more rows, so that every tab is
in view, whole (a strip that scrolled sideways showed a tab cut mid-word and hid the rest)."""

import pytest

from crm.models import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.test_browser import chromium_page, log_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_settings_tabs_on_a_phone_are_all_in_view(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    organization = OrganizationFactory(name="Tabs Org", slug="tabs-org")
    admin = UserFactory(email="tabs.admin@example.com")
    MembershipFactory(organization=organization, user=admin, role=Role.ADMIN)
    problems: list[str] = []

    with chromium_page(problems) as page:
        page.set_viewport_size({"width": 390, "height": 800})
        log_in(page, live_server, admin.email)
        page.goto(f"{live_server.url}/o/{organization.slug}/campaigns/settings/role-families/")
        tabs = page.locator(".section-tabs")
        bar = tabs.bounding_box()
        links = tabs.locator(".nav-link")
        boxes = [links.nth(index).bounding_box() for index in range(links.count())]
        rows = {round(box["y"]) for box in boxes}

        assert links.count() == 7  # an admin's settings tabs
        assert tabs.evaluate("t => t.scrollWidth <= t.clientWidth")  # nothing to scroll to
        # every tab inside the strip, give or take a sub-pixel of layout rounding
        assert all(
            box["x"] >= bar["x"] - 1 and box["x"] + box["width"] <= bar["x"] + bar["width"] + 1
            for box in boxes
        )
        assert len(rows) > 1  # they wrapped
        # each tab's label on one line (no tab broken in two)
        assert {round(box["height"]) for box in boxes} == {round(boxes[0]["height"])}

    assert problems == []
