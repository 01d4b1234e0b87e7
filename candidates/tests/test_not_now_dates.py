""" "Not now until" must be a date in the future where the organisation is: its own calendar,
not the server's (UTC). The clock is set just after midnight in a far time zone, on the
server's calendar day, so that the two calendars disagree."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_scopes import scopes_disabled

from candidates.services import profiles
from candidates.tests.factories import CandidateFactory

pytestmark = pytest.mark.django_db


def _set_clock(monkeypatch, hour: int, minute: int) -> datetime.date:
    """The clock at hour:minute UTC on the server's today; returns that day."""
    server_today = datetime.date.today()
    now = datetime.datetime.combine(server_today, datetime.time(hour, minute), tzinfo=datetime.UTC)
    monkeypatch.setattr(timezone, "now", lambda: now)
    return server_today


def _organisation_in(org, time_zone: str):
    with scopes_disabled():
        org.time_zone = time_zone
        org.save(update_fields=["time_zone"])


def test_not_now_until_today_in_auckland_is_refused_while_utc_is_a_day_behind(
    org, recruiter_user, in_org, monkeypatch
):
    _organisation_in(org, "Pacific/Auckland")
    # 12:30 UTC is 00:30 (winter) or 01:30 (summer) the next day in Auckland.
    server_today = _set_clock(monkeypatch, 12, 30)
    auckland_today = server_today + datetime.timedelta(days=1)
    candidate = CandidateFactory(organization=org)

    with in_org(), pytest.raises(ValidationError) as error:
        profiles.candidate_set_status(
            candidate=candidate,
            actor=recruiter_user,
            status="not_now",
            not_now_until=auckland_today,
        )

    assert error.value.message_dict == {"not_now_until": ["Choose a date in the future."]}
    candidate.refresh_from_db()
    assert (candidate.status, candidate.not_now_until) == ("active", None)


def test_not_now_until_tomorrow_in_honolulu_is_accepted_while_utc_is_a_day_ahead(
    org, recruiter_user, in_org, monkeypatch
):
    _organisation_in(org, "Pacific/Honolulu")
    # 05:00 UTC is 19:00 the day before in Honolulu (UTC-10, no summer time).
    server_today = _set_clock(monkeypatch, 5, 0)
    honolulu_tomorrow = server_today
    candidate = CandidateFactory(organization=org)

    with in_org():
        profiles.candidate_set_status(
            candidate=candidate,
            actor=recruiter_user,
            status="not_now",
            not_now_until=honolulu_tomorrow,
        )

    candidate.refresh_from_db()
    assert (candidate.status, candidate.not_now_until) == ("not_now", honolulu_tomorrow)


def test_organization_today_is_the_date_in_its_time_zone(org, monkeypatch):
    _organisation_in(org, "Pacific/Auckland")
    now = datetime.datetime(2025, 6, 30, 12, 30, tzinfo=datetime.UTC)  # 00:30 on 1 July there
    monkeypatch.setattr(timezone, "now", lambda: now)

    assert profiles.organization_today(organization=org) == datetime.date(2025, 7, 1)


def test_bulk_not_now_until_today_in_auckland_is_refused_while_utc_is_a_day_behind(
    org, monkeypatch
):
    from candidates.forms import BulkArgumentsForm

    _organisation_in(org, "Pacific/Auckland")
    server_today = _set_clock(monkeypatch, 12, 30)
    auckland_today = server_today + datetime.timedelta(days=1)

    def form(until):
        data = {"status": "not_now", "not_now_until": until.isoformat()}
        return BulkArgumentsForm(data, organization=org, action="status")

    refused, accepted = form(auckland_today), form(auckland_today + datetime.timedelta(days=1))

    assert refused.errors == {"not_now_until": ["Choose a date in the future."]}
    assert accepted.is_valid(), accepted.errors
