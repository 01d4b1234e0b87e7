"""Settings on a phone in a real browser: the tabs scroll sideways and start with the current
one in view (rapport.js), not off the right edge."""

import pytest

from crm.models import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.test_browser import chromium_page, log_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_settings_tabs_on_a_phone_show_the_current_tab(live_server, monkeypatch):
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
        current = tabs.locator(".nav-link.active")

        assert tabs.evaluate("t => t.scrollWidth > t.clientWidth")  # the tabs do overflow
        box, bar = current.bounding_box(), tabs.bounding_box()
        # in view, give or take a sub-pixel of layout rounding
        assert box["x"] >= bar["x"] - 1 and box["x"] + box["width"] <= bar["x"] + bar["width"] + 1

    assert problems == []
