"""The bulk status confirmation in a real browser: each status shows only its own part."""

import pytest

from candidates.tests.factories import CandidateFactory
from crm.models import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.test_browser import chromium_page, log_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_bulk_status_shows_the_do_not_contact_warning_only_for_that_status(
    live_server, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    organization = OrganizationFactory(name="Status Org", slug="status-org")
    recruiter = UserFactory(email="status.recruiter@example.com")
    MembershipFactory(organization=organization, user=recruiter, role=Role.RECRUITER)
    candidates = CandidateFactory.create_batch(2, organization=organization)
    ids = "&".join(f"ids={candidate.pk}" for candidate in candidates)
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, recruiter.email)
        page.goto(f"{live_server.url}/o/{organization.slug}/candidates/bulk/?action=status&{ids}")
        warning = page.locator("[data-show-when='status=do_not_contact']")
        date = page.locator("[data-show-when='status=not_now']")
        assert (warning.is_visible(), date.is_visible()) == (False, False)

        page.select_option("#id_status", "do_not_contact")
        assert (warning.is_visible(), date.is_visible()) == (True, False)
        page.get_by_role("button", name="Set status").click()  # not confirmed: asked again
        assert page.locator("#id_confirm_do_not_contact_errors").is_visible()
        assert page.locator("#id_status").input_value() == "do_not_contact"
        assert warning.is_visible()

        page.select_option("#id_status", "not_now")
        assert (warning.is_visible(), date.is_visible()) == (False, True)

    assert problems == []
