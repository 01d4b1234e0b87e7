"""A sent broadcast's page in a real browser: Chart.js draws the results chart under the
page's Content Security Policy (no inline script or style), with no console error."""

import pytest
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from campaigns.models import Message
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_broadcast, make_candidates
from tests.test_browser import ARTIFACTS, browser_recruiter, chromium_page, log_in


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sent_broadcast_page_draws_the_results_chart(live_server, monkeypatch):
    organization, user = browser_recruiter(
        monkeypatch, name="Chart Org", slug="chart-org", email="chart.recruiter@example.com"
    )
    make_candidates(organization, 3)
    campaign = make_broadcast(organization, user=user)
    with scope(organization=organization):
        campaign_launch(campaign=campaign, user=user)
        dispatch_due()
    with scopes_disabled():
        Message.objects.filter(campaign=campaign).update(status="delivered")
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        page.goto(f"{live_server.url}/o/{organization.slug}/campaigns/{campaign.pk}/")

        canvas = page.locator("#results-chart")
        expect(canvas).to_be_visible()
        page.wait_for_function("Boolean(window.Chart && window.Chart.getChart('results-chart'))")
        drawn = page.evaluate(
            "(() => { const c = window.Chart.getChart('results-chart');"
            " return [c.data.labels, c.data.datasets.map(d => d.data)]; })()"
        )
        box = canvas.bounding_box()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "campaign-results-chart.png"), full_page=True)

    assert problems == []  # a CSP violation would be a console error
    assert drawn == [
        ["Sent", "Delivered", "Opened", "Clicked", "Replied", "Unsubscribed", "Bounced"],
        [[3, 3, 0, 0, 0, 0, 0]],
    ]
    assert box["width"] > 300 and box["height"] > 150


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_step_form_shows_only_the_chosen_kinds_part(live_server, monkeypatch):
    """rapport.js's data-show-when hook: the email part for an email step, the task part for a
    task, switched as the kind is chosen."""
    from campaigns.tests.test_sequences import make_sequence

    organization, user = browser_recruiter(
        monkeypatch, name="Step Org", slug="step-org", email="step.recruiter@example.com"
    )
    campaign = make_sequence(organization, user=user, steps=[{}])
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        page.goto(f"{live_server.url}/o/{organization.slug}/campaigns/{campaign.pk}/steps/new/")
        email_part = page.locator('[data-show-when="kind=email"]')
        task_part = page.locator('[data-show-when="kind=task"]')
        expect(email_part).to_be_visible()
        expect(task_part).to_be_hidden()

        page.locator('input[name="kind"][value="task"]').check()
        expect(task_part).to_be_visible()
        expect(email_part).to_be_hidden()

    assert problems == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_sequence_page_puts_progress_under_the_steps_on_a_phone(live_server, monkeypatch):
    """On a phone the side column (Progress, Who joins) follows the steps, before the long
    candidates list, and nothing is wider than the screen; on a laptop it sits beside them."""
    from campaigns.tests.test_sequences import launched

    organization, user = browser_recruiter(
        monkeypatch, name="Phone Org", slug="phone-org", email="phone.recruiter@example.com"
    )
    campaign, _ = launched(organization, user, [{}, {}], candidates=3)
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        boxes = {}
        for width in (390, 1280):
            page.set_viewport_size({"width": width, "height": 844})
            page.goto(f"{live_server.url}/o/{organization.slug}/campaigns/{campaign.pk}/")
            boxes[width] = {
                name: page.locator(f"section[aria-labelledby='{name}-heading']").bounding_box()
                for name in ("steps", "progress", "audience", "enrollments")
            }
            boxes[width]["overflow"] = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"sequence-{width}.png"), full_page=True)

    phone, laptop = boxes[390], boxes[1280]
    assert problems == []
    # Nothing wider than the screen (below 0 when the page keeps a scrollbar gutter).
    assert phone["overflow"] <= 0
    assert (
        phone["steps"]["y"] + phone["steps"]["height"]
        < phone["progress"]["y"]
        < phone["audience"]["y"]
        < phone["enrollments"]["y"]
    )
    assert laptop["overflow"] <= 0
    assert laptop["progress"]["x"] > laptop["steps"]["x"] + laptop["steps"]["width"]
    assert laptop["progress"]["y"] == laptop["steps"]["y"]
    assert laptop["enrollments"]["y"] > laptop["steps"]["y"] + laptop["steps"]["height"]
