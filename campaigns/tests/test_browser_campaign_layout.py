"""Campaign pages in a real browser (Debian's Chromium through Playwright): "Send at" shows
only with a chosen time, the preference centre fits a 375px phone, and a sequence's
candidates table gives names their room on a laptop, long ones wrapping."""

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from campaigns.services.tokens import candidate_token
from candidates.models import Candidate
from candidates.tests.factories import CandidateFactory
from tests.factories import OrganizationFactory
from tests.test_browser import ARTIFACTS, browser_recruiter, chromium_page, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_broadcast_form_shows_send_at_only_for_a_chosen_time(live_server, monkeypatch):
    organization, user = browser_recruiter(
        monkeypatch, name="When Org", slug="when-org", email="when.recruiter@example.com"
    )
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        page.goto(f"{live_server.url}/o/{organization.slug}/campaigns/new/")
        send_at = page.get_by_label("Send at")
        expect(send_at).to_be_hidden()  # "As soon as I launch it" is ticked

        page.get_by_label("At a time I choose").check()
        expect(send_at).to_be_visible()

        page.get_by_label("As soon as I launch it").check()
        expect(send_at).to_be_hidden()

    assert problems == []


def test_preference_centre_fits_a_375px_phone(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    organization = OrganizationFactory(name="Northwind Talent", slug="northwind")
    candidate = CandidateFactory(organization=organization, first_name="Jane")
    token = candidate_token(organization_id=organization.pk, candidate_id=candidate.pk)
    problems: list[str] = []

    with chromium_page(problems) as page:
        page.set_viewport_size({"width": 375, "height": 812})
        page.goto(live_server.url + reverse("campaigns_public:preferences", args=[token]))
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        card = page.locator(".card-body").first.bounding_box()
        answers = [
            page.get_by_text(label, exact=True).bounding_box()
            for label in (
                "Whenever there is something for me",
                "At most once a week",
                "At most once a month",
            )
        ]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "preferences-375.png"), full_page=True)

    assert problems == []
    assert overflow <= 0  # nothing wider than the screen (a kept scrollbar gutter: below 0)
    for box in answers:  # each answer whole, inside the card
        assert card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"]


def test_sequence_candidates_table_gives_names_room_on_a_laptop(live_server, monkeypatch):
    from campaigns.tests.test_sequences import launched

    organization, user = browser_recruiter(
        monkeypatch, name="Table Org", slug="table-org", email="table.recruiter@example.com"
    )
    campaign, people = launched(organization, user, [{}, {}], candidates=2)
    with scopes_disabled():  # a long name, and no name at all: the address shows instead
        Candidate.objects.filter(pk=people[0].pk).update(
            first_name="Maria-Fernanda", last_name="Castellanos-Villanueva de la Torre"
        )
        Candidate.objects.filter(pk=people[1].pk).update(
            first_name="",
            last_name="",
            email="firstname.middlename.lastname.recruiting@a-long-company-domain.example",
        )
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        widths = {}
        for width in (1024, 1280):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(f"{live_server.url}/o/{organization.slug}/campaigns/{campaign.pk}/")
            box = page.locator(".sequence-layout-candidates .table-responsive")
            widths[width] = page.evaluate(
                """(box) => ({
                    name: box.querySelector("th.enrollment-candidate").getBoundingClientRect().width,
                    hidden: box.scrollWidth - box.clientWidth,
                })""",
                box.element_handle(),
            )
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(
                path=str(ARTIFACTS / f"sequence-candidates-{width}.png"), full_page=True
            )

    assert problems == []
    for width, measured in widths.items():
        assert measured["name"] >= 160, (width, measured)  # 10rem and more
        assert measured["hidden"] == 0, (width, measured)  # nothing scrolled out of sight
