"""The send path reads each chunk with a fixed number of queries: a message field, or a field of
its campaign, enrollment or candidate, that `sending._SEND_FIELDS` leaves out would be loaded
by one query per message."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import EmailSettings, Message
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.tests.factories import make_broadcast, make_candidates


def _queries_to_send(org, user, in_org, recipients: int) -> tuple[int, int]:
    make_candidates(org, recipients, tags=(f"q{recipients}",))
    campaign = make_broadcast(org, user=user, tag=f"q{recipients}")
    with in_org():
        campaign_launch(campaign=campaign, user=user)
        dispatch_due()
    with scopes_disabled():
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
    with scope(organization=org), CaptureQueriesContext(connection) as queries:
        report = messages_send(organization=org, message_ids=ids)
    return report.sent, len(queries)


def test_queries_do_not_grow_with_the_chunk(org, recruiter_user, in_org):
    sent_few, few = _queries_to_send(org, recruiter_user, in_org, 2)
    sent_many, many = _queries_to_send(org, recruiter_user, in_org, 6)
    assert (sent_few, sent_many) == (2, 6)
    assert many == few


def _queries_to_hold(org, user, monkeypatch, recipients: int) -> tuple[tuple[int, int], int]:
    """A sequence's emails sent at 10:00 on a Tuesday by a recruiter whose daily cap is one:
    the first goes, the others wait for the window's next opening in each candidate's time
    zone (`sending._within_window` reads the campaign's window, the organisation's and the
    candidate's time zone)."""
    from campaigns.tests.test_sequences import TUESDAY_10, make_sequence

    tag = f"h{recipients}"
    make_candidates(org, recipients, tags=(tag,), time_zone="Europe/Paris")
    campaign = make_sequence(
        org, user=user, steps=[{}], tag=tag, name=tag, use_candidate_time_zone=True
    )
    monkeypatch.setattr(timezone, "now", lambda: TUESDAY_10)
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=user, now=TUESDAY_10)
        dispatch_due(now=TUESDAY_10)
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
    with scope(organization=org), CaptureQueriesContext(connection) as queries:
        report = messages_send(organization=org, message_ids=ids)
    return (report.sent, report.held), len(queries)


def test_queries_do_not_grow_with_the_held_emails_of_a_sequence(
    org, recruiter_user, admin_user, monkeypatch
):
    with scopes_disabled():
        EmailSettings.objects.update_or_create(organization=org, defaults={"sender_daily_cap": 1})
    outcome_few, few = _queries_to_hold(org, recruiter_user, monkeypatch, 2)
    outcome_many, many = _queries_to_hold(org, admin_user, monkeypatch, 6)
    assert (outcome_few, outcome_many) == ((1, 1), (1, 5))
    assert many == few
