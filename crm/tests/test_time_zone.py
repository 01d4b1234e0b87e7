"""An organisation's pages and tasks run in its time zone: times are its wall clock and
"today" is its date, whatever the server's (UTC)."""

from datetime import UTC, datetime

import pytest
from django.utils import timezone
from django_scopes import scopes_disabled

from candidates.models import Activity
from candidates.tests.factories import CandidateFactory
from crm.celery import OrganizationTask, app


def _in(org, zone: str):
    with scopes_disabled():
        org.time_zone = zone
        org.save(update_fields=["time_zone"])


def test_the_profile_shows_times_on_the_organisations_wall_clock(recruiter_client, org):
    _in(org, "America/New_York")  # UTC-4 on 10 March 2026 (summer time from 8 March)
    candidate = CandidateFactory(organization=org)
    with scopes_disabled():
        Activity.objects.create(
            organization=org,
            candidate=candidate,
            kind=Activity.Kind.EDITED,
            summary="Edited the headline",
            occurred_at=datetime(2026, 3, 10, 15, 30, tzinfo=UTC),
        )

    page = recruiter_client.get(f"/o/{org.slug}/candidates/{candidate.pk}/").content.decode()

    assert "10 Mar 2026, 11:30" in page
    assert "10 Mar 2026, 15:30" not in page


def test_a_date_in_the_past_where_the_organisation_is_is_refused(recruiter_client, org):
    """At 11:30 UTC on 27 November it is already 28 November in Auckland: "not now until
    28 November" is not in the future there."""
    _in(org, "Pacific/Auckland")
    candidate = CandidateFactory(organization=org)
    now = datetime(2026, 11, 27, 11, 30, tzinfo=UTC)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(timezone, "now", lambda: now)
        answer = recruiter_client.post(
            f"/o/{org.slug}/candidates/{candidate.pk}/edit/",
            {
                "first_name": candidate.first_name,
                "last_name": candidate.last_name,
                "email": candidate.email,
                "source": "sourced",
                "status": "not_now",
                "not_now_until": "2026-11-28",
            },
        )
    assert answer.status_code == 200
    assert "Choose a date in the future." in answer.content.decode()


class _ZoneProbe(OrganizationTask):
    name = "tests.zone_probe"

    def run(self, *, organization_id):
        return timezone.get_current_timezone_name(), timezone.localdate().isoformat()


def test_an_organisation_task_runs_in_the_organisations_time_zone(org, monkeypatch):
    _in(org, "Asia/Tokyo")
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 11, 27, 16, 0, tzinfo=UTC))
    probe = app.register_task(_ZoneProbe())

    assert probe(organization_id=org.pk) == ("Asia/Tokyo", "2026-11-28")
    assert timezone.get_current_timezone_name() == "UTC"  # and only inside the task
