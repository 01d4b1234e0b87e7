"""Double opt-in: the request, the confirmation email, the signed page (GET changes nothing,
POST confirms) and the recruiter's button on the profile."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils.html import escape
from django_scopes import scope, scopes_disabled

from campaigns.models import Consent, EmailSettings, Message, Suppression
from campaigns.services.campaigns import campaign_launch
from campaigns.services.consent import (
    consent_from_token,
    consent_request_double_opt_in,
    consent_token,
)
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.tests.factories import make_broadcast, make_candidates
from candidates.tests.factories import CandidateFactory

WORDING = "I agree to receive job news from Acme Talent. I can unsubscribe at any time."


@pytest.fixture
def candidate(org):
    return CandidateFactory(organization=org, email="jane@example.com", first_name="Jane")


def _request(org, candidate, **kwargs) -> Consent:
    with scope(organization=org):
        return consent_request_double_opt_in(
            candidate=candidate, source="Career fair 2026", wording=WORDING, **kwargs
        )


def _url(consent) -> str:
    return reverse("campaigns_public:consent_confirm", args=[consent_token(consent=consent)])


def test_double_opt_in_sends_only_a_transactional_confirmation(
    org, candidate, django_capture_on_commit_callbacks
):
    with scopes_disabled():
        Suppression.objects.create(organization=org, email="jane@example.com", reason="manual")
    # The candidate asked (a sign-up form): a suppression does not hold back the confirmation.
    with django_capture_on_commit_callbacks(execute=True):
        consent = _request(org, candidate, on_candidates_request=True)
    (email,) = mail.outbox
    assert email.to == ["jane@example.com"]
    assert "List-Unsubscribe" not in email.extra_headers
    token = re.search(r"/e/k/([^/\s]+)/", email.body).group(1)
    assert consent_from_token(token)[2] == consent
    assert WORDING in email.body
    assert consent.granted_at is None
    assert (consent.source, consent.wording) == ("Career fair 2026", WORDING)
    assert consent.requested_at is not None


def test_double_opt_in_get_shows_the_button_and_changes_nothing(client, org, candidate):
    consent = _request(org, candidate)
    response = client.get(_url(consent))
    head = client.head(_url(consent))
    with scopes_disabled():
        consent.refresh_from_db()
    assert response.status_code == 200
    assert head.status_code == 200
    assert b"Confirm</button>" in response.content
    assert consent.granted_at is None


def test_double_opt_in_post_confirms_and_records_time_source_and_wording(client, org, candidate):
    consent = _request(org, candidate)
    response = client.post(_url(consent))
    again = client.post(_url(consent))
    with scopes_disabled():
        consent.refresh_from_db()
        timeline = list(candidate.activities.values_list("summary", flat=True))
    assert response.status_code == 200
    assert b"you are confirmed" in response.content
    assert b"You already confirmed" in again.content
    assert consent.granted_at is not None
    assert (consent.source, consent.wording) == ("Career fair 2026", WORDING)
    assert any("Confirmed consent" in s for s in timeline)


@pytest.mark.parametrize("token", ["nonsense", "1-2-3-0.AAAAAAAAAAAAAAAAAAAAAA"])
def test_double_opt_in_bad_token_is_404_and_changes_nothing(client, org, candidate, token):
    _request(org, candidate)
    response = client.post(reverse("campaigns_public:consent_confirm", args=[token]))
    with scopes_disabled():
        confirmed = Consent.objects.filter(granted_at__isnull=False).count()
    assert response.status_code == 404
    assert confirmed == 0


def test_double_opt_in_token_of_another_purpose_is_refused(client, org, candidate):
    from campaigns.services.tokens import candidate_token

    consent = _request(org, candidate)
    token = candidate_token(
        organization_id=org.pk, candidate_id=candidate.pk, message_id=consent.pk
    )
    response = client.post(reverse("campaigns_public:consent_confirm", args=[token]))
    assert response.status_code == 404


def test_double_opt_in_campaign_email_waits_for_confirmation(
    client, org, recruiter_user, candidate
):
    with scopes_disabled():
        EmailSettings.objects.create(organization=org, consent_required=True)
        candidate.tags = ["newsletter"]
        candidate.save()
    consent = _request(org, candidate)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        message = Message.objects.get(campaign=campaign)
        messages_send(organization=org, message_ids=[message.pk])
        message.refresh_from_db()
    assert message.skip_reason == Message.SkipReason.NO_CONSENT
    client.post(_url(consent))
    second = make_broadcast(org, user=recruiter_user, name="After confirming")
    with scope(organization=org):
        campaign_launch(campaign=second, user=recruiter_user)
        dispatch_due()
        ids = list(Message.objects.filter(campaign=second).values_list("pk", flat=True))
        report = messages_send(organization=org, message_ids=ids)
    assert report.sent == 1


def test_consent_request_view_sends_for_a_recruiter(
    recruiter_client, org, candidate, django_capture_on_commit_callbacks
):
    url = reverse("campaigns:consent_request", args=[org.slug, candidate.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = recruiter_client.post(
            url, {"source": "Phone call", "wording": WORDING}, follow=True
        )
    with scopes_disabled():
        consent = Consent.objects.get(candidate=candidate)
    assert response.status_code == 200
    assert b"confirmation email is on its way" in response.content
    assert consent.source == "Phone call"
    assert len(mail.outbox) == 1


def _unsubscribe(org, candidate):
    from campaigns.services.preferences import candidate_unsubscribe

    with scope(organization=org):
        candidate_unsubscribe(candidate=candidate, source="preference centre")


def _suppress(org, candidate):
    with scopes_disabled():
        Suppression.objects.create(
            organization=org, email=candidate.email, reason=Suppression.Reason.BOUNCED
        )


def _do_not_contact(org, candidate):
    with scopes_disabled():
        candidate.status = "do_not_contact"
        candidate.save(update_fields=["status"])


@pytest.mark.parametrize(
    ("opt_out", "reason", "on_profile"),
    [
        (_do_not_contact, "Do not contact", "This candidate is marked “Do not contact”"),
        (_unsubscribe, "unsubscribed", "This candidate unsubscribed: no confirmation"),
        (_suppress, "suppressed (hard bounce)", None),
    ],
)
def test_consent_request_is_refused_for_those_who_opted_out(
    recruiter_client,
    org,
    candidate,
    django_capture_on_commit_callbacks,
    opt_out,
    reason,
    on_profile,
):
    opt_out(org, candidate)
    profile = recruiter_client.get(reverse("candidates:detail", args=[org.slug, candidate.pk]))
    url = reverse("campaigns:consent_request", args=[org.slug, candidate.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = recruiter_client.post(
            url, {"source": "Phone call", "wording": WORDING}, follow=True
        )
    with scopes_disabled():
        assert Consent.objects.count() == 0
    assert mail.outbox == []
    assert reason in response.content.decode()
    if on_profile:  # the form is not offered; the page says why
        assert on_profile in profile.content.decode()
        assert url not in profile.content.decode()


def test_consent_request_view_without_wording_changes_nothing(recruiter_client, org, candidate):
    url = reverse("campaigns:consent_request", args=[org.slug, candidate.pk])
    response = recruiter_client.post(url, {"source": "Phone call", "wording": ""})
    with scopes_disabled():
        count = Consent.objects.count()
    assert response.status_code == 302
    assert count == 0


def test_consent_request_view_roles_and_tenancy(
    client, viewer_client, outsider_client, org, candidate
):
    url = reverse("campaigns:consent_request", args=[org.slug, candidate.pk])
    data = {"source": "x", "wording": WORDING}
    assert client.post(url, data).status_code == 302  # anonymous → login
    assert "/accounts/login/" in client.post(url, data)["Location"]
    assert viewer_client.post(url, data).status_code == 403
    assert outsider_client.post(url, data).status_code == 404
    with scopes_disabled():
        assert Consent.objects.count() == 0


def test_profile_shows_sent_emails_and_the_opt_in_form(recruiter_client, org, recruiter_user):
    (candidate,) = make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        message = Message.objects.get()
        messages_send(organization=org, message_ids=[message.pk])
        message.refresh_from_db()
    response = recruiter_client.get(reverse("candidates:detail", args=[org.slug, candidate.pk]))
    body = response.content.decode()
    message_url = reverse("campaigns:message_detail", args=[org.slug, campaign.pk, message.pk])
    assert response.status_code == 200
    assert "Sent emails" in body
    assert message_url in body
    assert message.subject in body
    assert reverse("campaigns:consent_request", args=[org.slug, candidate.pk]) in body


@pytest.mark.parametrize("campaigns", [1, 3])
def test_profile_sent_emails_query_count_does_not_grow_with_emails(
    recruiter_client, org, recruiter_user, campaigns
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    (candidate,) = make_candidates(org, 1)
    for index in range(campaigns):
        campaign = make_broadcast(org, user=recruiter_user, name=f"Campaign {index}")
        with scope(organization=org):
            campaign_launch(campaign=campaign, user=recruiter_user)
    with scope(organization=org):
        dispatch_due()
    url = reverse("candidates:detail", args=[org.slug, candidate.pk])
    recruiter_client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = recruiter_client.get(url)
    panel_queries = [q for q in queries if '"campaigns_' in q["sql"]]
    assert response.content.decode().count("Campaign ") >= campaigns
    # the messages with their campaigns, the consent, the candidate's preferences
    assert len(panel_queries) == 3


def test_the_timeline_says_who_changed_consent(
    recruiter_client, client, org, candidate, recruiter_user, django_capture_on_commit_callbacks
):
    url = reverse("campaigns:consent_request", args=[org.slug, candidate.pk])
    with django_capture_on_commit_callbacks(execute=True):
        recruiter_client.post(url, {"source": "Phone call", "wording": WORDING})
    with scopes_disabled():
        consent = Consent.objects.get(candidate=candidate)
    client.post(_url(consent))  # the candidate confirms

    profile = recruiter_client.get(reverse("candidates:detail", args=[org.slug, candidate.pk]))
    entries = re.findall(
        r'<li class="timeline-item timeline-consent_changed".*?</li>',
        profile.content.decode(),
        re.S,
    )

    assert len(entries) == 2
    assert "Confirmed consent" in entries[0] and "by the candidate" in entries[0]
    assert "Asked to confirm" in entries[1]
    assert f"by {escape(recruiter_user.display_name)}" in entries[1]


def test_a_second_recruiter_request_while_one_waits_sends_nothing_and_says_why(
    recruiter_client, org, candidate, django_capture_on_commit_callbacks
):
    """A double click, or a colleague asking the same day: one confirmation email, and the
    second request says when the first went out."""
    url = reverse("campaigns:consent_request", args=[org.slug, candidate.pk])
    with django_capture_on_commit_callbacks(execute=True):
        recruiter_client.post(url, {"source": "Phone call", "wording": WORDING})
        second = recruiter_client.post(
            url, {"source": "Phone call", "wording": WORDING}, follow=True
        )
    with scopes_disabled():
        assert Consent.objects.filter(candidate=candidate).count() == 1
    assert len(mail.outbox) == 1
    assert "is still waiting for them" in second.content.decode()


def test_a_request_can_be_sent_again_after_a_day(
    org, candidate, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    with django_capture_on_commit_callbacks(execute=True):
        first = _request(org, candidate)
    with scopes_disabled():
        Consent.objects.filter(pk=first.pk).update(
            requested_at=first.requested_at - timedelta(hours=25)
        )
    with django_capture_on_commit_callbacks(execute=True):
        second = _request(org, candidate)
    assert second.pk != first.pk
    assert len(mail.outbox) == 2


def test_a_sign_up_form_sent_twice_sends_one_confirmation(
    org, candidate, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = _request(org, candidate, on_candidates_request=True)
        again = _request(org, candidate, on_candidates_request=True)
    assert again == first
    assert len(mail.outbox) == 1
