"""What the team sees of a sent email: never a candidate's signed token (they act for the
candidate: a viewer could resubscribe someone who opted out), in any part of any page."""

import re

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from campaigns import public_urls
from campaigns.models import CandidateEmailPreference, EmailSettings, InboundEmail, Message
from campaigns.services import messages as message_service
from campaigns.services import tokens
from campaigns.services.campaigns import campaign_launch
from campaigns.services.consent import CONSENT_SALT
from campaigns.services.dispatch import dispatch_due
from campaigns.services.replies import REPLY_SALT, reply_address_for, unsubscribe_mailto
from campaigns.services.templates import email_send_test
from campaigns.tests.factories import make_broadcast, make_candidates

ALL_SALTS = [tokens.CANDIDATE_SALT, tokens.OPEN_SALT, tokens.CLICK_SALT, REPLY_SALT, CONSENT_SALT]
# Anything shaped like a token (tokens.token_make) and every public path with something in it.
TOKEN = re.compile(r"[0-9a-z]+-[0-9a-z]+-[0-9a-z]+-[0-9a-z]+\.[0-9A-Za-z]+\.[\w-]{22}")
PUBLIC_PATH = re.compile(r"/e/[a-z]/[^\s\"'<>)]+")


def _valid_tokens(text: str) -> list[str]:
    return [
        token
        for token in TOKEN.findall(text)
        if any(tokens.token_read(token, salt=salt) for salt in ALL_SALTS)
    ]


def _page(client, name, org, campaign, message) -> str:
    response = client.get(reverse(f"campaigns:{name}", args=[org.slug, campaign.pk, message.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def sent(org, recruiter_user, in_org):
    """A broadcast with an open pixel, tracked links and the candidate's links in its body."""
    make_candidates(org, 2)
    body = (
        "Hi {{ first_name }}, [the role](https://jobs.example.com/42).\n\n"
        "Not for you? [Change what you get]({{ preferences_url }}) or {{ unsubscribe_url }}"
    )
    campaign = make_broadcast(org, user=recruiter_user, body=body)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        message = Message.objects.filter(campaign=campaign).order_by("pk").first()
    # What the stored email carries: the defect needs all of these.
    assert "/e/o/" in message.html and "/e/c/" in message.html and "/e/p/" in message.text
    assert "unsubscribe+" in message.headers["List-Unsubscribe"]
    return campaign, message


@pytest.mark.parametrize("member", ["viewer_client", "recruiter_client", "admin_client"])
def test_sent_email_page_shows_no_candidate_token_to_any_member(request, member, org, sent):
    client = request.getfixturevalue(member)
    campaign, message = sent
    page = _page(client, "message_detail", org, campaign, message)
    frame = _page(client, "message_html", org, campaign, message)

    for shown in (page, frame):
        assert TOKEN.findall(shown) == []
        assert "unsubscribe+" not in shown and "reply+" not in shown
        # every link into the candidate's pages is gone, not merely disabled
        assert PUBLIC_PATH.findall(shown) == []
    assert "List-Unsubscribe" in page  # the header is still shown …
    assert "&lt;[candidate&#x27;s link]&gt;, &lt;[candidate&#x27;s link]&gt;" in page  # … redacted
    assert "Change what you get ([candidate&#x27;s link])" in page  # the plain-text part
    assert 'href="#"' in frame and "the role" in frame


def test_viewer_cannot_resubscribe_a_candidate_from_the_sent_email_page(
    viewer_client, client, org, sent
):
    """The audit's attack: the candidate opts out; a viewer takes what the page shows and tries
    every way back in (the preference centre's resubscribe, each public path on the page)."""
    campaign, message = sent
    unsubscribe = next(
        token
        for token in TOKEN.findall(message.headers["List-Unsubscribe"])
        if tokens.token_read(token, salt=tokens.CANDIDATE_SALT)
    )
    client.post(
        reverse("campaigns_public:unsubscribe", args=[unsubscribe]),
        {"List-Unsubscribe": "One-Click"},
    )
    shown = _page(viewer_client, "message_detail", org, campaign, message) + _page(
        viewer_client, "message_html", org, campaign, message
    )

    for token in set(TOKEN.findall(shown)):
        viewer_client.post(reverse("campaigns_public:resubscribe", args=[token]))
    for path in set(PUBLIC_PATH.findall(shown)):
        viewer_client.post(path)

    with scopes_disabled():
        preference = CandidateEmailPreference.objects.get(candidate_id=message.candidate_id)
    assert preference.unsubscribed_at is not None


def test_every_token_route_and_address_is_redacted(org):
    """Each candidate-facing route with a <token> (a new one included, without a change to the
    redaction), the List-Unsubscribe mailto: and the per-message reply address."""
    token = tokens.candidate_token(organization_id=org.pk, candidate_id=7, message_id=9)
    routes = [r for r in public_urls.urlpatterns if "token" in r.pattern.converters]
    urls = [
        "https://rapport.example.com" + reverse(f"campaigns_public:{route.name}", args=[token])
        for route in routes
    ]
    assert {route.name for route in routes} >= {
        "unsubscribe",
        "resubscribe",
        "preferences",
        "open",
        "click",
        "consent_confirm",
    }
    mailto = unsubscribe_mailto(token=token, domain="acme.example")
    shown = [message_service.text_for_staff(f"See {url}.") for url in urls]

    assert shown == ["See [candidate's link]."] * len(urls)
    assert message_service.text_for_staff(f"<{mailto}>") == "<[candidate's link]>"
    assert message_service.text_for_staff(f"reply+{token}@in.example") == "[candidate's link]"
    assert (
        message_service.text_for_staff(f"token {token} alone") == "token [candidate's link] alone"
    )
    # what is not a candidate's link stays
    kept = "Sam <sam+jobs@acme.example>, https://jobs.example.com/e/x/ and logo /e/b/1/k.png"
    assert message_service.text_for_staff(kept) == kept


def test_reply_address_is_redacted_where_staff_read_it(org, sent, settings):
    settings.CAMPAIGNS_REPLY_DOMAIN = "in.rapport.example"
    _, message = sent
    address = reply_address_for(message)
    assert _valid_tokens(address) != []
    assert message_service.text_for_staff(f"Reply-To: {address}") == "Reply-To: [candidate's link]"


def test_subject_and_replies_with_a_token_are_redacted_on_every_list(
    viewer_client, org, sent, in_org
):
    """A subject written before links were refused there, and a reply quoting the email."""
    campaign, message = sent
    link = message.text.split("Unsubscribe: ")[1].split()[0]
    with scopes_disabled():
        Message.objects.filter(pk=message.pk).update(subject=f"Leave: {link}")
        InboundEmail.objects.create(
            organization=org,
            message=message,
            candidate_id=message.candidate_id,
            email_message_id="<r1@example.com>",
            from_email="candidate@example.com",
            subject="Re: Leave",
            text=f"Thanks!\n> Unsubscribe: {link}",
            full_text="",
            received_at=message.created_at,
        )
    pages = [
        reverse("campaigns:messages", args=[org.slug, campaign.pk]),
        reverse("campaigns:message_detail", args=[org.slug, campaign.pk, message.pk]),
        reverse("candidates:detail", args=[org.slug, message.candidate_id]),
    ]

    for page in pages:
        body = viewer_client.get(page).content.decode()
        assert _valid_tokens(body) == [], page
        assert "Leave: [candidate&#x27;s link]" in body, page


@pytest.mark.parametrize("as_candidate", [False, True])
def test_send_a_test_to_me_carries_no_token_of_a_real_candidate(
    org, recruiter_user, in_org, as_candidate, client, django_capture_on_commit_callbacks
):
    """A test email goes to the recruiter's own inbox, shown in full: its links are samples
    that act for nobody, even when it is previewed as a real candidate."""
    candidate = make_candidates(org, 1)[0]
    campaign = make_broadcast(
        org, user=recruiter_user, body="Hi {{ first_name }}. [Leave]({{ unsubscribe_url }})"
    )
    with scopes_disabled():
        EmailSettings.objects.update_or_create(
            organization=org, defaults={"track_opens": True, "track_clicks": True}
        )
        step = campaign.steps.get()
    with in_org(), django_capture_on_commit_callbacks(execute=False):
        message = email_send_test(
            organization=org,
            user=recruiter_user,
            subject=step.subject,
            preheader=step.preheader,
            body_markdown=step.body_markdown,
            candidate=candidate if as_candidate else None,
            campaign=campaign,
        )
    stored = " ".join([message.subject, message.html, message.text, str(message.headers)])

    assert TOKEN.findall(stored) == []
    paths = set(PUBLIC_PATH.findall(stored))
    assert paths  # the sample links are there, as in the real email …
    # … and lead to a page that says they come from a test email (and act for nobody).
    pages = {path: client.get(path) for path in paths}
    assert {path: page.status_code for path, page in pages.items()} == dict.fromkeys(paths, 200)
    assert all("This link is from a test email" in page.content.decode() for page in pages.values())


def test_candidate_links_are_refused_in_subject_and_preheader(recruiter_client, org):
    response = recruiter_client.post(
        reverse("campaigns:template_create", args=[org.slug]),
        {
            "name": "Leaky",
            "subject": "Bye {{ unsubscribe_url }}",
            "preheader": "{{ preferences_url }}",
            "body_markdown": "[Unsubscribe]({{ unsubscribe_url }})",
        },
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "Line 1: “unsubscribe_url” is a link for the body of the email." in body
    assert "Line 1: “preferences_url” is a link for the body of the email." in body
