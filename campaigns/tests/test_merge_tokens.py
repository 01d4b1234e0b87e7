"""Links in emails sent before a merge keep working after it: a merge moves the merged-away
profile's messages and consent requests to the surviving profile, while the signed tokens in
the emails already sent still name the merged-away one. Clicks redirect, opens and clicks are
recorded, replies are matched and double opt-ins confirm — for the surviving profile. A token
naming another organisation is still refused."""

from datetime import timedelta

import pytest
from anymail.inbound import AnymailInboundMessage
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from analytics.models import EngagementEvent
from campaigns.models import Consent, Enrollment, InboundEmail, Message
from campaigns.services import tokens, tracking
from campaigns.services.campaigns import campaign_launch
from campaigns.services.consent import CONSENT_SALT, consent_request_double_opt_in, consent_token
from campaigns.services.dispatch import dispatch_due
from campaigns.services.replies import REPLY_SALT, inbound_email_record, reply_address_for
from campaigns.tests.factories import make_broadcast, make_candidates, send_all
from campaigns.tests.tracking_links import click_paths, pixel_path
from candidates.models import Activity
from candidates.services.merge import candidate_merge, candidate_merge_undo

HUMAN = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko)"
BODY = "Hi {{ first_name }}, [one role](https://jobs.example.com/1)."
REPLY_DOMAIN = "replies.acme.example"


@pytest.fixture
def survivor(org):
    """The profile that stays: not in the campaign's audience."""
    (candidate,) = make_candidates(org, 1, tags=("alumni",))
    return candidate


@pytest.fixture
def merged_away(org):
    """The profile that the campaign email goes to and that is then merged into `survivor`."""
    (candidate,) = make_candidates(org, 1)
    return candidate


@pytest.fixture
def sent_message(org, recruiter_user, merged_away) -> Message:
    """A sent campaign email to `merged_away`, with an active enrollment."""
    campaign = make_broadcast(org, user=recruiter_user, body=BODY)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
    send_all(org, campaign)
    with scope(organization=org):
        Message.objects.filter(campaign=campaign).update(
            sent_at=timezone.now() - timedelta(minutes=10)
        )
        Enrollment.objects.filter(campaign=campaign).update(
            status=Enrollment.Status.ACTIVE, next_run_at=timezone.now() + timedelta(days=3)
        )
        message = Message.objects.get(campaign=campaign)
    assert message.candidate_id == merged_away.pk
    return message


def _merge(org, recruiter_user, *, primary, secondary):
    with scope(organization=org):
        return candidate_merge(
            primary=primary, secondary=secondary, field_choices={}, actor=recruiter_user
        )


def _engagement(org, kind) -> list[int]:
    with scope(organization=org):
        return list(
            EngagementEvent.objects.filter(kind=kind, is_machine=False).values_list(
                "candidate_id", flat=True
            )
        )


def _timeline(org, kind) -> list[int]:
    with scope(organization=org):
        return list(Activity.objects.filter(kind=kind).values_list("candidate_id", flat=True))


def _reply(*, to: str, subject: str) -> AnymailInboundMessage:
    headers = {
        "From": "Jane Doe <jane@example.com>",
        "To": to,
        "Subject": f"Re: {subject}",
        "Message-ID": "<reply-after-merge@mail.example.com>",
        "Date": "Mon, 05 Jan 2026 11:00:00 +0000",
    }
    lines = [f"{name}: {value}" for name, value in headers.items()]
    return AnymailInboundMessage.parse_raw_mime(
        "\r\n".join(lines) + "\r\n\r\nYes, let's talk on Thursday.\r\n"
    )


# --- clicks and opens ----------------------------------------------------------------------------


def test_merge_tokens_click_in_a_merged_away_profiles_email_redirects(
    org, recruiter_user, survivor, merged_away, sent_message, client
):
    _merge(org, recruiter_user, primary=survivor, secondary=merged_away)

    response = client.get(click_paths(sent_message)[0], headers={"user-agent": HUMAN})

    assert response.status_code == 302
    assert response["Location"] == "https://jobs.example.com/1"
    assert tracking.buffered_count() == 1


def test_merge_tokens_open_and_click_count_for_the_surviving_profile(
    org, recruiter_user, survivor, merged_away, sent_message, client
):
    _merge(org, recruiter_user, primary=survivor, secondary=merged_away)
    client.get(pixel_path(sent_message), headers={"user-agent": HUMAN})
    client.get(click_paths(sent_message)[0], headers={"user-agent": HUMAN})

    report = tracking.tracking_flush(hold_seconds=0)

    assert (report.events, report.dropped, report.written) == (2, 0, 2)
    assert (report.first_opens, report.first_clicks) == (1, 1)
    assert _engagement(org, "opened") == [survivor.pk]
    assert _engagement(org, "clicked") == [survivor.pk]
    assert _timeline(org, Activity.Kind.EMAIL_OPENED) == [survivor.pk]
    assert _timeline(org, Activity.Kind.EMAIL_CLICKED) == [survivor.pk]
    with scope(organization=org):
        sent_message.refresh_from_db()
    assert sent_message.opened_at is not None
    assert sent_message.clicked_at is not None


def test_merge_tokens_events_buffered_before_the_merge_count_for_the_surviving_profile(
    org, recruiter_user, survivor, merged_away, sent_message, client
):
    client.get(pixel_path(sent_message), headers={"user-agent": HUMAN})
    _merge(org, recruiter_user, primary=survivor, secondary=merged_away)

    report = tracking.tracking_flush()

    assert (report.events, report.dropped, report.first_opens) == (1, 0, 1)
    assert _engagement(org, "opened") == [survivor.pk]
    assert _timeline(org, Activity.Kind.EMAIL_OPENED) == [survivor.pk]


def test_merge_tokens_after_an_undo_events_count_for_the_restored_profile(
    org, recruiter_user, survivor, merged_away, sent_message, client
):
    record = _merge(org, recruiter_user, primary=survivor, secondary=merged_away)
    with scope(organization=org):
        candidate_merge_undo(record=record, actor=recruiter_user)
    client.get(click_paths(sent_message)[0], headers={"user-agent": HUMAN})

    report = tracking.tracking_flush(hold_seconds=0)

    assert (report.written, report.first_clicks) == (1, 1)
    assert _engagement(org, "clicked") == [merged_away.pk]
    assert _timeline(org, Activity.Kind.EMAIL_CLICKED) == [merged_away.pk]


def test_merge_tokens_open_naming_another_organisation_is_dropped(
    org, other_org, sent_message, client
):
    forged = tokens.token_make(
        salt=tokens.OPEN_SALT,
        organization_id=other_org.pk,
        candidate_id=sent_message.candidate_id,
        message_id=sent_message.pk,
    )
    client.get(f"/e/o/{forged}.gif", headers={"user-agent": HUMAN})

    report = tracking.tracking_flush()

    assert (report.events, report.dropped, report.written) == (1, 1, 0)
    with scopes_disabled():
        assert EngagementEvent.objects.filter(kind="opened").count() == 0
        assert Message.objects.get(pk=sent_message.pk).opened_at is None


# --- replies -------------------------------------------------------------------------------------


def test_merge_tokens_reply_to_a_merged_away_profiles_email_is_matched(
    org, recruiter_user, survivor, merged_away, sent_message, settings
):
    settings.CAMPAIGNS_REPLY_DOMAIN = REPLY_DOMAIN
    address = reply_address_for(sent_message)
    _merge(org, recruiter_user, primary=survivor, secondary=merged_away)

    inbound = inbound_email_record(message=_reply(to=address, subject=sent_message.subject))

    assert inbound is not None
    with scope(organization=org):
        inbound = InboundEmail.objects.get(pk=inbound.pk)
        enrollment = Enrollment.objects.get(pk=sent_message.enrollment_id)
        sent_message.refresh_from_db()
    assert (inbound.message_id, inbound.candidate_id) == (sent_message.pk, survivor.pk)
    assert sent_message.replied_at is not None
    assert (enrollment.candidate_id, enrollment.status, enrollment.stop_reason) == (
        survivor.pk,
        "stopped",
        "replied",
    )
    assert _engagement(org, "replied") == [survivor.pk]
    assert _timeline(org, Activity.Kind.EMAIL_REPLIED) == [survivor.pk]


def test_merge_tokens_reply_address_naming_another_organisation_matches_nothing(
    org, other_org, sent_message, settings
):
    settings.CAMPAIGNS_REPLY_DOMAIN = REPLY_DOMAIN
    forged = tokens.token_make(
        salt=REPLY_SALT,
        organization_id=other_org.pk,
        candidate_id=sent_message.candidate_id,
        message_id=sent_message.pk,
    )

    inbound = inbound_email_record(
        message=_reply(to=f"reply+{forged}@{REPLY_DOMAIN}", subject=sent_message.subject)
    )

    assert inbound is None
    with scopes_disabled():
        assert InboundEmail.objects.count() == 0


# --- double opt-in -------------------------------------------------------------------------------


def _request_consent(org, candidate) -> Consent:
    with scope(organization=org):
        return consent_request_double_opt_in(
            candidate=candidate, source="Career fair 2026", wording="Email me about roles."
        )


def test_merge_tokens_opt_in_sent_to_a_merged_away_profile_confirms_for_the_survivor(
    org, recruiter_user, survivor, merged_away, client
):
    consent = _request_consent(org, merged_away)
    url = reverse("campaigns_public:consent_confirm", args=[consent_token(consent=consent)])
    _merge(org, recruiter_user, primary=survivor, secondary=merged_away)

    response = client.post(url)

    with scope(organization=org):
        consent.refresh_from_db()
        confirmed = Activity.objects.filter(
            kind=Activity.Kind.CONSENT_CHANGED, summary__startswith="Confirmed consent"
        ).values_list("candidate_id", flat=True)
        confirmed = list(confirmed)
    assert response.status_code == 200
    assert b"you are confirmed" in response.content
    assert consent.granted_at is not None
    assert consent.candidate_id == survivor.pk
    assert confirmed == [survivor.pk]
    assert _engagement(org, "consent_given") == [survivor.pk]


def test_merge_tokens_opt_in_naming_another_organisation_is_refused(
    org, other_org, merged_away, client
):
    consent = _request_consent(org, merged_away)
    forged = tokens.token_make(
        salt=CONSENT_SALT,
        organization_id=other_org.pk,
        candidate_id=merged_away.pk,
        message_id=consent.pk,
    )

    response = client.post(reverse("campaigns_public:consent_confirm", args=[forged]))

    with scopes_disabled():
        consent.refresh_from_db()
    assert response.status_code == 404
    assert consent.granted_at is None
