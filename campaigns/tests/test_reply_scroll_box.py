"""A long reply on a sent email's page scrolls in its box (.email-text, 24rem), which a keyboard
must reach to scroll it (axe's scrollable-region-focusable, WCAG 2.1.1): the box is then a
region named after the reply, in the order of Tab. A short reply shows whole and takes no Tab
stop: a focusable element is one that a keyboard user needs."""

import shutil
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled
from playwright.sync_api import expect, sync_playwright

from campaigns.models import InboundEmail, Message
from campaigns.tests.factories import send_all
from crm.tests.markup import attributes, elements
from tests.test_accessibility import axe_violations, describe
from tests.test_browser import CHROMIUM_ARGS, log_in

# What the candidate wrote: 24 short paragraphs, some 2,900 characters.
LONG = "\n\n".join(
    f"Question {number}: how does the on-call rotation work, and who decides the roadmap?"
    for number in range(1, 25)
)
SHORT = "Thanks! Could we talk on Thursday?"
LONG_NAME = "Reply from jane@example.com, 6 Jan 2026, 09:30"
# Whether the focused element is scrolled down within a second (a keyboard's scroll is animated).
SCROLLED = """() => new Promise(resolve => {
  const element = document.activeElement;
  const started = performance.now();
  (function check() {
    if (element.scrollTop > 0 || performance.now() - started > 1000) {
      resolve(element.scrollTop > 0);
    } else {
      requestAnimationFrame(check);
    }
  })();
})"""


@pytest.fixture
def replied(org, launched_broadcast):
    """A sent email with a long reply and a short one: (message, its page's path)."""
    campaign, _candidates = launched_broadcast
    send_all(org, campaign)
    with scopes_disabled():
        message = Message.objects.filter(campaign=campaign).order_by("pk").first()
        for text, day, identifier in ((LONG, 6, "long"), (SHORT, 5, "short")):
            InboundEmail.objects.create(
                organization=org,
                message=message,
                candidate=message.candidate,
                email_message_id=f"<{identifier}@mail.example.com>",
                from_email="jane@example.com",
                text=text,
                full_text=text,
                received_at=datetime(2026, 1, day, 9, 30, tzinfo=UTC),
            )
    path = reverse("campaigns:message_detail", args=[org.slug, campaign.pk, message.pk])
    return message, path


def _reply_boxes(html: str) -> list[dict]:
    """The attributes of each reply's text box, newest first (the plain-text part, a <pre>,
    is left out)."""
    return [
        attributes(element)
        for element in elements(html)
        if element.name != "pre" and "email-text" in (attributes(element).get("class") or "")
    ]


def test_reply_long_is_a_named_region_a_keyboard_reaches_and_short_shows_whole(
    replied, recruiter_client
):
    _message, path = replied  # replies received in January, when London is on UTC

    body = recruiter_client.get(path).content.decode()

    long_box, short_box = _reply_boxes(body)
    named = {name: long_box.get(name) for name in ("role", "tabindex", "aria-label")}
    assert named == {"role": "region", "tabindex": "0", "aria-label": LONG_NAME}
    assert "email-text-whole" not in long_box["class"]  # it scrolls after 24rem
    assert set(short_box["class"].split()) == {"mb-0", "mt-1", "email-text", "email-text-whole"}
    assert not {"role", "tabindex", "aria-label"} & set(short_box)
    assert "Question 24: how does the on-call rotation work" in body


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("width", [1366, 390])
def test_reply_long_scrolls_by_keyboard_with_no_accessibility_violation(
    live_server, replied, recruiter_user, monkeypatch, width
):
    # Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls
    # from a thread with a running loop (the fixtures' database teardown included).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    _message, path = replied
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Browser tests need Debian's Chromium on PATH as `chromium`.")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            # axe is added to the page as a <script>, which the Content Security Policy would
            # block; reduced motion makes a scroll instant (as tests/test_accessibility.py does).
            context = browser.new_context(
                bypass_csp=True, reduced_motion="reduce", viewport={"width": width, "height": 900}
            )
            page = context.new_page()
            log_in(page, live_server, recruiter_user.email)
            page.goto(live_server.url + path)
            replies = page.locator("section[aria-labelledby=replies-heading] .email-text")
            expect(replies).to_have_count(2)
            scrolls = replies.evaluate_all(
                "boxes => boxes.map(box => box.scrollHeight > box.clientHeight)"
            )
            named = page.get_by_role("region", name=LONG_NAME).count()
            violations = axe_violations(page)
            # Tab from the section's heading: the long reply is the next stop, and End (or the
            # arrows) scrolls it; the short one is no stop.
            page.locator("#replies-heading").evaluate("heading => { heading.tabIndex = -1 }")
            page.locator("#replies-heading").focus()
            page.keyboard.press("Tab")
            stops = [replies.nth(0).evaluate("box => box === document.activeElement")]
            page.keyboard.press("End")
            scrolled = page.evaluate(SCROLLED)
            page.keyboard.press("Tab")
            stops.append(replies.nth(1).evaluate("box => box === document.activeElement"))
        finally:
            browser.close()

    assert not violations, describe(violations)
    assert scrolls == [True, False]  # the long one scrolls; the short one shows whole
    assert named == 1
    assert (stops, scrolled) == ([True, False], True)
