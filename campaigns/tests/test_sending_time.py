"""Time at send time: a sequence's held or retried email waits for its sending window, and a
candidate's pause is read on the organisation's date."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from django.core import mail
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import CandidateEmailPreference, EmailSettings, Message
from campaigns.selectors import candidate_emails_panel
from campaigns.services import guards
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.tests.backends import ScriptedBackend, deferred
from campaigns.tests.factories import make_broadcast, make_candidates
from campaigns.tests.test_guards import _earlier_email
from campaigns.tests.test_sequences import TUESDAY_10, make_sequence
from candidates.models import Candidate

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
WEDNESDAY_9_LONDON = datetime(2026, 3, 4, 9, 0, tzinfo=LONDON)


def _in_london(org) -> None:
    with scopes_disabled():
        org.time_zone = "Europe/London"
        org.save(update_fields=["time_zone"])


def _sequence_sent_at(org, user, monkeypatch, now, *, candidates=1, **fields) -> list[Message]:
    """A one-step sequence (Monday to Friday, 09:00 to 17:00) launched, rendered and sent at `now`; its
    emails afterwards."""
    make_candidates(org, candidates)
    campaign = make_sequence(
        org,
        user=user,
        steps=[{}],
        window_days=[0, 1, 2, 3, 4],
        window_start="09:00",
        window_end="17:00",
        **fields,
    )
    monkeypatch.setattr(timezone, "now", lambda: now)
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=user, now=now)
        dispatch_due(now=now)
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
    with scope(organization=org):
        messages_send(organization=org, message_ids=ids)
    with scopes_disabled():
        return list(Message.objects.filter(campaign=campaign).order_by("pk"))


def test_sequence_email_over_the_daily_cap_waits_for_the_window_not_midnight(
    org, recruiter_user, monkeypatch
):
    _in_london(org)
    with scopes_disabled():
        EmailSettings.objects.update_or_create(organization=org, defaults={"sender_daily_cap": 1})

    sent, held = _sequence_sent_at(org, recruiter_user, monkeypatch, TUESDAY_10, candidates=2)

    assert (sent.status, held.status) == (Message.Status.SENT, Message.Status.QUEUED)
    assert held.last_error == guards.HOLD_SENDER_CAP
    # Not Wednesday 00:00, when the recruiter's day starts, but when the window opens.
    assert held.next_attempt_at == WEDNESDAY_9_LONDON


def test_sequence_email_retried_near_the_window_end_waits_for_the_next_opening(
    org, recruiter_user, monkeypatch, settings
):
    _in_london(org)
    settings.EMAIL_BACKEND = "campaigns.tests.backends.ScriptedBackend"
    ScriptedBackend.script = [deferred()]
    closing = datetime(2026, 3, 3, 16, 59, 30, tzinfo=LONDON)  # the retry is due at 17:00:30

    (retried,) = _sequence_sent_at(org, recruiter_user, monkeypatch, closing)

    assert (retried.status, retried.attempts) == (Message.Status.QUEUED, 1)
    assert retried.next_attempt_at == WEDNESDAY_9_LONDON


def test_sequence_email_held_by_the_candidates_frequency_waits_for_their_window(
    org, recruiter_user, monkeypatch
):
    """In the candidate's time zone when the sequence uses it: a week after their last email
    is 18:00 in New York, after the window; the email waits for 09:00 there the next day."""
    (candidate,) = make_candidates(org, 1)
    with scopes_disabled():
        Candidate.objects.filter(pk=candidate.pk).update(time_zone="America/New_York")
        CandidateEmailPreference.objects.create(
            organization=org, candidate=candidate, frequency="weekly"
        )
    earlier = _earlier_email(org, recruiter_user, candidate, days_ago=1)
    with scopes_disabled():
        Message.objects.filter(pk=earlier.pk).update(
            sent_at=datetime(2026, 2, 25, 18, 0, tzinfo=NEW_YORK)
        )
    ten_in_new_york = datetime(2026, 3, 3, 10, 0, tzinfo=NEW_YORK)

    (held,) = _sequence_sent_at(
        org,
        recruiter_user,
        monkeypatch,
        ten_in_new_york,
        candidates=0,
        use_candidate_time_zone=True,
    )

    assert held.last_error == guards.HOLD_CANDIDATE_FREQUENCY
    assert held.next_attempt_at == datetime(2026, 3, 5, 9, 0, tzinfo=NEW_YORK)


def test_broadcast_email_over_the_daily_cap_still_waits_until_midnight(org, recruiter_user):
    """A broadcast has no sending window: its held email is due when the recruiter's day
    starts again."""
    _in_london(org)
    with scopes_disabled():
        EmailSettings.objects.update_or_create(organization=org, defaults={"sender_daily_cap": 1})
    make_candidates(org, 2)
    campaign = make_broadcast(org, user=recruiter_user)
    start = timezone.now()
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
        messages_send(organization=org, message_ids=ids)
    with scopes_disabled():
        held = Message.objects.get(campaign=campaign, status=Message.Status.QUEUED)
    assert held.next_attempt_at == guards.next_local_midnight(org, start)


# --- the candidate's pause, on the organisation's date ---

# 14:00 on Tuesday in UTC is 03:00 on Wednesday 4 March in Auckland.
AUCKLAND_WEDNESDAY = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)


def _paused(org, *paused_until: date) -> list[Candidate]:
    with scopes_disabled():
        org.time_zone = "Pacific/Auckland"
        org.save(update_fields=["time_zone"])
    candidates = make_candidates(org, len(paused_until))
    with scopes_disabled():
        for candidate, until in zip(candidates, paused_until, strict=True):
            CandidateEmailPreference.objects.create(
                organization=org, candidate=candidate, paused_until=until
            )
    return candidates


def test_pause_ends_on_its_day_in_the_organisations_time_zone(org, recruiter_user, monkeypatch):
    """Paused "until 4 March": on 4 March in the organisation's time zone the emails go again,
    though it is still 3 March in UTC; on the day before they are held."""
    ends_today, _ends_tomorrow = _paused(org, date(2026, 3, 4), date(2026, 3, 5))
    monkeypatch.setattr(timezone, "now", lambda: AUCKLAND_WEDNESDAY)
    campaign = make_broadcast(org, user=recruiter_user)
    with scope(organization=org):
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
        report = messages_send(organization=org, message_ids=ids)
    assert [m.to for m in mail.outbox] == [[ends_today.email]]
    assert report.skip_reasons == {Message.SkipReason.PAUSED: 1}


def test_profile_shows_the_pause_on_the_same_days_as_sending_holds_it(org, monkeypatch):
    ends_today, ends_tomorrow = _paused(org, date(2026, 3, 4), date(2026, 3, 5))
    monkeypatch.setattr(timezone, "now", lambda: AUCKLAND_WEDNESDAY)
    with scope(organization=org):
        shown = [candidate_emails_panel(candidate=c)["paused"] for c in (ends_today, ends_tomorrow)]
    assert shown == [False, True]
