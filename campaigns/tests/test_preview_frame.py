"""Email preview frames take their email's height (rapport.js), at a laptop's width and a
phone's, after a resize and after "Update preview" loads a new email into the frame; and the
frame stays a sandbox in which the email runs no script.

The page may read the email's height only because the frame is sandboxed with
allow-same-origin (and never allow-scripts): an opaque-origin frame's document is closed to
its page, and a script inside the email is what the sandbox exists to stop."""

import re

import pytest
from django.urls import reverse
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect

from campaigns.models import Message
from campaigns.tests.factories import EmailTemplateFactory, make_broadcast, make_candidates
from campaigns.tests.test_sequences import make_sequence
from tests.test_browser import ARTIFACTS, browser_recruiter, chromium_page, log_in

SHORT = "Hi {{ first_name }}, a quick hello."
LONG = "\n\n".join(
    f"Paragraph {n}: we are growing the platform team and would love to tell you more about "
    "the roles we open this spring, the people you would work with and how we hire."
    for n in range(1, 13)
)
IFRAME = re.compile(r"<iframe\b[^>]*>", re.S)


def launched_message(organization, user, body: str) -> Message:
    """A broadcast to one candidate, launched and dispatched: its queued message."""
    from campaigns.services.campaigns import campaign_launch
    from campaigns.services.dispatch import dispatch_due

    make_candidates(organization, 1)
    campaign = make_broadcast(organization, user=user, body=body, name="Sent one")
    with scope(organization=organization):
        campaign_launch(campaign=campaign, user=user)
        dispatch_due()
    with scopes_disabled():
        return Message.objects.get(campaign=campaign)


def frame_tags(html: str) -> list[str]:
    return [tag for tag in IFRAME.findall(html) if "email-preview-frame" in tag]


# --- The markup and the frame's own policy ----------------------------------------------------


def preview_pages(organization, user) -> dict[str, str]:
    """Each page with an email preview frame: {name: url}."""
    slug = organization.slug
    broadcast = make_broadcast(organization, user=user, body=SHORT)
    sequence = make_sequence(organization, user=user, steps=[{"body_markdown": SHORT}])
    with scopes_disabled():
        step = sequence.steps.get()
    template = EmailTemplateFactory(organization=organization, body_markdown=SHORT)
    message = launched_message(organization, user, SHORT)
    return {
        "campaign": reverse("campaigns:detail", args=[slug, broadcast.pk]),
        "campaign email": reverse("campaigns:email_edit", args=[slug, broadcast.pk]),
        "template": reverse("campaigns:template_edit", args=[slug, template.pk]),
        "step": reverse("campaigns:step_edit", args=[slug, sequence.pk, step.pk]),
        "message": reverse(
            "campaigns:message_detail", args=[slug, message.campaign_id, message.pk]
        ),
    }


def test_preview_frames_are_sandboxed_same_origin_without_scripts(
    recruiter_client, recruiter_user, org
):
    pages = preview_pages(org, recruiter_user)

    tags = {
        name: frame_tags(recruiter_client.get(url).content.decode()) for name, url in pages.items()
    }

    for name, found in tags.items():
        assert len(found) == 1, name
        assert 'sandbox="allow-same-origin"' in found[0], name
        assert "data-email-frame" in found[0], name
        assert "allow-scripts" not in found[0], name


def test_preview_frame_response_lets_its_page_read_it_and_runs_no_script(
    recruiter_client, recruiter_user, org
):
    campaign = make_broadcast(org, user=recruiter_user, body=SHORT)

    response = recruiter_client.get(reverse("campaigns:preview", args=[org.slug, campaign.pk]))

    directives = [part.strip() for part in response["Content-Security-Policy"].split(";")]
    assert "sandbox allow-same-origin" in directives
    assert "default-src 'none'" in directives
    assert not any(part.startswith("script-src") for part in directives)
    assert response["X-Frame-Options"] == "SAMEORIGIN"


# --- In a browser -----------------------------------------------------------------------------

MEASURE_EMAIL = """() => ({
  height: document.documentElement.getBoundingClientRect().height,
  scroll: document.documentElement.scrollHeight,
  client: document.documentElement.clientHeight,
})"""


def frame_fit(page) -> dict:
    """The preview frame's inner height and its email's content height, read by Playwright
    (which may look into any frame), once they agree or after three seconds."""
    frame = page.locator("iframe.email-preview-frame").element_handle()
    fit = {}
    for _ in range(30):
        email = frame.content_frame().evaluate(MEASURE_EMAIL)
        fit = {"frame": frame.evaluate("f => f.clientHeight"), **email}
        if abs(fit["frame"] - fit["height"]) <= 3:
            break
        page.wait_for_timeout(100)
    return fit


def assert_fits(fit: dict, where: str) -> None:
    assert abs(fit["frame"] - fit["height"]) <= 3, (where, fit)  # no blank gap, nothing cut
    assert fit["scroll"] <= fit["client"] + 1, (where, fit)  # no scrollbar inside


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_preview_frames_take_their_emails_height_on_a_laptop_and_a_phone(live_server, monkeypatch):
    organization, user = browser_recruiter(
        monkeypatch, name="Frame Org", slug="frame-org", email="frame.recruiter@example.com"
    )
    slug = organization.slug
    broadcast = make_broadcast(organization, user=user, body=LONG)
    template = EmailTemplateFactory(organization=organization, body_markdown=SHORT)
    message = launched_message(organization, user, LONG)
    pages = {
        "campaign": reverse("campaigns:detail", args=[slug, broadcast.pk]),
        "template": reverse("campaigns:template_edit", args=[slug, template.pk]),
        "message": reverse(
            "campaigns:message_detail", args=[slug, message.campaign_id, message.pk]
        ),
    }
    problems: list[str] = []
    fits = {}

    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        for width, height in ((1366, 900), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            for name, url in pages.items():
                page.goto(live_server.url + url)
                fits[name, width] = frame_fit(page)
        # A phone turned sideways: the frame follows its email's new wrapping without a reload.
        page.set_viewport_size({"width": 844, "height": 390})
        fits["message", "turned"] = frame_fit(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "preview-frame-turned.png"), full_page=True)

    assert problems == []  # e.g. no Content-Security-Policy violations
    for where, fit in fits.items():
        assert_fits(fit, where)
    # The long email wraps onto more lines on a phone, and its frame grew with it.
    assert fits["campaign", 390]["frame"] > fits["campaign", 1366]["frame"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_update_preview_refits_the_frame_to_the_new_email(live_server, monkeypatch):
    organization, user = browser_recruiter(
        monkeypatch, name="Refit Org", slug="refit-org", email="refit.recruiter@example.com"
    )
    sequence = make_sequence(organization, user=user, steps=[{"body_markdown": SHORT}])
    with scopes_disabled():
        step = sequence.steps.get()
    url = reverse("campaigns:step_edit", args=[organization.slug, sequence.pk, step.pk])
    problems: list[str] = []

    with chromium_page(problems) as page:
        page.set_viewport_size({"width": 390, "height": 844})
        log_in(page, live_server, user.email)
        page.goto(live_server.url + url)
        short = frame_fit(page)
        assert_fits(short, "saved")
        email = page.frame_locator("iframe.email-preview-frame")
        page.get_by_label("Body").fill(LONG)
        page.get_by_role("button", name="Update preview").click()
        expect(email.get_by_text("Paragraph 12:")).to_be_attached()
        long = frame_fit(page)
        # And back to a short one: the frame shrinks, leaving no blank gap under it.
        page.get_by_label("Body").fill(SHORT)
        page.get_by_role("button", name="Update preview").click()
        expect(email.get_by_text("Paragraph 12:")).not_to_be_attached()
        short_again = frame_fit(page)

    assert problems == []
    assert_fits(long, "updated to a long email")
    assert_fits(short_again, "updated back to a short email")
    assert long["frame"] > short["frame"] + 300
    assert abs(short_again["frame"] - short["frame"]) <= 3
