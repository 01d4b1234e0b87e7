"""The talent pool form in a real browser: the smart pool's rule shows only while Smart is
chosen (rapport.js's data-show-when)."""

import pytest
from playwright.sync_api import expect

from tests.test_browser import browser_recruiter, chromium_page, log_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pool_form_shows_the_rule_picker_only_for_a_smart_pool(live_server, monkeypatch):
    organization, user = browser_recruiter(
        monkeypatch, name="Pool Form Org", slug="pool-form-org", email="pool.form@example.com"
    )
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        page.goto(f"{live_server.url}/o/{organization.slug}/pools/new/")
        rule = page.locator("#id_saved_search")

        expect(page.get_by_label("Static — add and remove people yourself")).to_be_checked()
        expect(rule).to_be_hidden()
        page.get_by_label("Smart — everyone matching a saved search").check()
        expect(rule).to_be_visible()
        page.get_by_label("Static — add and remove people yourself").check()
        expect(rule).to_be_hidden()

    assert problems == []
