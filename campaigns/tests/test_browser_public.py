"""The candidate-facing pages in a real browser (Debian's Chromium through Playwright): the
forms a candidate submits from an email — unsubscribe, resubscribe, preferences, double
opt-in — must work as a browser sends them (its Origin and Referer headers, its cookies), not
only as the test client does."""

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from campaigns.models import CandidateEmailPreference, Consent
from campaigns.services.consent import consent_request_double_opt_in, consent_token
from campaigns.services.tokens import candidate_token
from candidates.tests.factories import CandidateFactory
from tests.factories import OrganizationFactory
from tests.test_browser import chromium_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _preference(candidate) -> CandidateEmailPreference | None:
    with scopes_disabled():
        return CandidateEmailPreference.objects.filter(candidate=candidate).first()


def test_browser_candidate_unsubscribes_resubscribes_and_saves_preferences(
    live_server, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    organization = OrganizationFactory(name="Northwind Talent", slug="northwind")
    candidate = CandidateFactory(organization=organization, first_name="Jane")
    token = candidate_token(organization_id=organization.pk, candidate_id=candidate.pk)
    problems: list[str] = []
    with chromium_page(problems) as page:
        page.goto(live_server.url + reverse("campaigns_public:unsubscribe", args=[token]))
        assert _preference(candidate) is None  # showing the page changed nothing
        page.get_by_role("button", name="Unsubscribe").click()
        expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
        assert _preference(candidate).unsubscribed_at is not None

        page.get_by_role("button", name="Resubscribe").click()
        expect(page.get_by_role("heading", name="Jane, choose what you hear about")).to_be_visible()
        assert _preference(candidate).unsubscribed_at is None

        page.get_by_label("At most once a month").check()
        page.get_by_label("Pause all emails for").select_option("3")
        page.get_by_role("button", name="Save preferences").click()
        expect(page.get_by_text("Saved. Thank you for keeping us up to date.")).to_be_visible()
    preference = _preference(candidate)
    assert preference.frequency == "monthly"
    assert preference.paused_until is not None
    assert problems == []


def test_browser_candidate_confirms_double_opt_in(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    organization = OrganizationFactory(name="Northwind Talent", slug="northwind")
    candidate = CandidateFactory(organization=organization, first_name="Jane")
    with scope(organization=organization):
        consent = consent_request_double_opt_in(
            candidate=candidate, source="Career fair", wording="Yes, keep me posted."
        )
    url = reverse("campaigns_public:consent_confirm", args=[consent_token(consent=consent)])
    problems: list[str] = []
    with chromium_page(problems) as page:
        page.goto(live_server.url + url)
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("heading", name="Thank you, you are confirmed")).to_be_visible()
    with scopes_disabled():
        assert Consent.objects.get(pk=consent.pk).granted_at is not None
    assert problems == []
