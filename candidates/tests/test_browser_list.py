"""The candidate list's bulk bar in a real browser (candidate_list.js)."""

import pytest

from candidates.tests.factories import CandidateFactory
from crm.models import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.test_browser import chromium_page, log_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_bulk_action_with_nothing_ticked_is_an_announced_error_and_focuses_a_checkbox(
    live_server, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    organization = OrganizationFactory(name="Bulk Org", slug="bulk-org")
    recruiter = UserFactory(email="bulk.recruiter@example.com")
    MembershipFactory(organization=organization, user=recruiter, role=Role.RECRUITER)
    CandidateFactory.create_batch(2, organization=organization)
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, recruiter.email)
        page.goto(f"{live_server.url}/o/{organization.slug}/candidates/")
        page.select_option("#bulk-action", "tag")
        page.get_by_role("button", name="Continue").click()

        hint = page.locator("#bulk-selected")
        assert hint.text_content().strip() == "Tick at least one candidate first"
        assert hint.get_attribute("role") == "alert"
        assert "text-danger" in hint.get_attribute("class").split()
        first_box = page.locator("input[name=ids][form=bulk-form]").first
        assert first_box.evaluate("box => box === document.activeElement")
        assert page.url.endswith(f"/o/{organization.slug}/candidates/")  # no round trip

        first_box.check()  # ticking one is the grey count again
        assert hint.text_content().strip() == "1 selected"
        assert hint.get_attribute("role") is None
        assert "text-body-secondary" in hint.get_attribute("class").split()

    assert problems == []
