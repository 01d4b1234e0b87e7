"""A note's Edit, Pin and Delete on a phone: at least 44px tall under a finger, still compact
for a mouse on a laptop."""

import pytest
from django_scopes import scope

from candidates.services.profiles import note_create
from candidates.tests.factories import CandidateFactory
from tests.test_browser import browser_recruiter, chromium_page, log_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_note_actions_are_big_enough_to_tap_on_a_phone(live_server, monkeypatch):
    organization, user = browser_recruiter(
        monkeypatch, name="Tap Org", slug="tap-org", email="tap.recruiter@example.com"
    )
    candidate = CandidateFactory(organization=organization)
    with scope(organization=organization):
        note_create(candidate=candidate, author=user, body="Keen on the data team.")
    problems: list[str] = []

    heights = {}
    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 800})
            page.goto(f"{live_server.url}/o/{organization.slug}/candidates/{candidate.pk}/")
            buttons = page.locator("#activity .note-actions .btn")
            heights[width] = [
                buttons.nth(index).bounding_box()["height"] for index in range(buttons.count())
            ]

    assert len(heights[390]) == 3  # Edit, Pin, Delete
    assert min(heights[390]) >= 44
    assert max(heights[1280]) < 36  # a laptop keeps the compact links
    assert problems == []
