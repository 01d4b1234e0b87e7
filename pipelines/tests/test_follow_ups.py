from datetime import UTC, date, datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from candidates.models import Activity, Candidate
from candidates.services.activities import candidate_last_contacted
from pipelines import services
from pipelines.models import FollowUp, FollowUpDigest
from pipelines.tasks import follow_ups_daily_task, follow_ups_dispatch
from pipelines.tests.factories import FollowUpFactory

pytestmark = pytest.mark.django_db
LONDON = ZoneInfo("Europe/London")


def url(name, org, **kwargs):
    return reverse(f"pipelines:{name}", kwargs={"org_slug": org.slug, **kwargs})


def _at(year, month, day, hour, minute=0):
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


def test_follow_up_create_view(recruiter_client, org, recruiter_user, make_candidates, unscoped):
    (candidate,) = make_candidates(1)

    with mock.patch("django.utils.timezone.now", return_value=_at(2030, 1, 10, 9)):
        response = recruiter_client.post(
            url("follow_up_create", org, candidate_id=candidate.pk),
            {"due_on": "2030-05-01", "note": "Call in spring", "owner": recruiter_user.pk},
        )

    assert response.status_code == 302
    with unscoped():
        follow_up = FollowUp.objects.get()
        activity = Activity.objects.get(kind="follow_up")
    assert (follow_up.due_on, follow_up.owner, follow_up.note) == (
        date(2030, 5, 1),
        recruiter_user,
        "Call in spring",
    )
    assert activity.summary == "Follow-up set for 1 May 2030: Call in spring"


def test_follow_up_form_offers_unassigned_for_no_owner(recruiter_client, org, make_candidates):
    (candidate,) = make_candidates(1)

    response = recruiter_client.post(
        url("follow_up_create", org, candidate_id=candidate.pk), {"due_on": "soon"}
    )

    assert response.context["form"].fields["owner"].empty_label == "Unassigned"


def test_follow_up_create_invalid_date_shows_error(recruiter_client, org, make_candidates):
    (candidate,) = make_candidates(1)

    response = recruiter_client.post(
        url("follow_up_create", org, candidate_id=candidate.pk), {"due_on": "soon"}
    )

    assert response.status_code == 200
    assert "Enter a valid date." in response.content.decode()


@pytest.mark.parametrize("due_on", ["9999-12-31", "far"])
def test_follow_up_more_than_five_years_ahead_is_refused(
    recruiter_client, org, make_candidates, unscoped, due_on
):
    (candidate,) = make_candidates(1)
    latest = services.latest_date_ahead(today=timezone.localdate())
    if due_on == "far":
        due_on = (latest + timedelta(days=1)).isoformat()

    page = recruiter_client.get(url("follow_up_create", org, candidate_id=candidate.pk))
    response = recruiter_client.post(
        url("follow_up_create", org, candidate_id=candidate.pk), {"due_on": due_on}
    )

    assert f'max="{latest.isoformat()}"' in page.content.decode()
    assert response.status_code == 200
    assert f"Choose a date within 5 years (by {latest:%-d %b %Y})." in (response.content.decode())
    with unscoped():
        assert not FollowUp.objects.exists()


def test_follow_up_in_the_past_is_refused(recruiter_client, org, make_candidates, unscoped):
    (candidate,) = make_candidates(1)
    yesterday = timezone.localdate() - timedelta(days=1)

    response = recruiter_client.post(
        url("follow_up_create", org, candidate_id=candidate.pk), {"due_on": yesterday.isoformat()}
    )

    assert response.status_code == 200
    assert "Choose today or a later date." in response.content.decode()
    with unscoped():
        assert FollowUp.objects.count() == 0


def test_follow_up_for_today_is_accepted(recruiter_client, org, make_candidates, unscoped):
    (candidate,) = make_candidates(1)

    response = recruiter_client.post(
        url("follow_up_create", org, candidate_id=candidate.pk),
        {"due_on": timezone.localdate().isoformat()},
    )

    assert response.status_code == 302
    with unscoped():
        assert FollowUp.objects.get().due_on == timezone.localdate()


def test_overdue_follow_up_keeps_its_date_while_its_note_changes(
    recruiter_client, org, make_candidates, unscoped
):
    (candidate,) = make_candidates(1)
    overdue = timezone.localdate() - timedelta(days=3)
    follow_up = FollowUpFactory(candidate=candidate, due_on=overdue, note="Call")
    edit = url("follow_up_edit", org, follow_up_id=follow_up.pk)

    kept = recruiter_client.post(edit, {"due_on": overdue.isoformat(), "note": "Call back"})
    moved = recruiter_client.post(
        edit, {"due_on": (overdue - timedelta(days=1)).isoformat(), "note": "Call back"}
    )

    assert kept.status_code == 302
    assert moved.status_code == 200
    assert "Choose today or a later date." in moved.content.decode()
    with unscoped():
        follow_up.refresh_from_db()
    assert (follow_up.due_on, follow_up.note) == (overdue, "Call back")


def test_follow_up_latest_date_ahead_is_five_years_from_today():
    assert services.latest_date_ahead(today=date(2026, 11, 27)) == date(2031, 11, 27)
    assert services.latest_date_ahead(today=date(2028, 2, 29)) == date(2033, 2, 28)


def test_follow_up_create_viewer_is_403(viewer_client, org, make_candidates):
    (candidate,) = make_candidates(1)

    assert (
        viewer_client.get(url("follow_up_create", org, candidate_id=candidate.pk)).status_code
        == 403
    )


def test_my_follow_ups_groups_overdue_today_upcoming(
    recruiter_client, org, recruiter_user, admin_user, make_candidates
):
    a, b, c, d = make_candidates(4)
    today = timezone.localdate()
    FollowUpFactory(candidate=a, owner=recruiter_user, due_on=today - timedelta(days=2))
    FollowUpFactory(candidate=b, owner=recruiter_user, due_on=today)
    FollowUpFactory(candidate=c, owner=recruiter_user, due_on=today + timedelta(days=5))
    FollowUpFactory(candidate=d, owner=admin_user, due_on=today)

    response = recruiter_client.get(url("follow_ups", org))

    groups = response.context["groups"]
    assert [f.candidate for f in groups["overdue"]] == [a]
    assert [f.candidate for f in groups["today"]] == [b]
    assert [f.candidate for f in groups["upcoming"]] == [c]


def test_a_viewer_sees_everyones_follow_ups_and_no_action_they_cannot_take(
    viewer_client, org, recruiter_user, make_candidates
):
    (candidate,) = make_candidates(1)
    FollowUpFactory(candidate=candidate, owner=recruiter_user, due_on=timezone.localdate())

    response = viewer_client.get(url("follow_ups", org))
    mine = viewer_client.get(url("follow_ups", org), {"show": "mine"})

    body = response.content.decode()
    assert response.context["show"] == "everyone"
    assert candidate.full_name in body
    assert "?show=mine" not in body  # they own no follow-ups: no "Mine" view to pick
    assert mine.context["show"] == "everyone"


def test_a_viewers_empty_follow_ups_page_offers_nothing_they_cannot_do(viewer_client, org):
    body = viewer_client.get(url("follow_ups", org)).content.decode()

    assert "Nothing to follow up" in body
    assert "Set a follow-up from a candidate" not in body
    assert "morning email" not in body


def test_a_recruiters_empty_follow_ups_page_says_how_to_set_one(recruiter_client, org):
    response = recruiter_client.get(url("follow_ups", org))

    assert response.context["show"] == "mine"
    assert "Set a follow-up from a candidate" in response.content.decode()


def _follow_up_page_queries(client, org):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url("follow_ups", org)).status_code == 200
    return len(queries)


def test_my_follow_ups_query_count_does_not_grow(
    recruiter_client, org, recruiter_user, make_candidates
):
    candidates = make_candidates(3)
    FollowUpFactory(candidate=candidates[0], owner=recruiter_user)
    one = _follow_up_page_queries(recruiter_client, org)
    for candidate in candidates[1:]:
        FollowUpFactory(candidate=candidate, owner=recruiter_user)

    assert _follow_up_page_queries(recruiter_client, org) == one


def test_follow_up_done(recruiter_client, org, recruiter_user, make_candidates, unscoped):
    (candidate,) = make_candidates(1)
    follow_up = FollowUpFactory(candidate=candidate, owner=recruiter_user)

    response = recruiter_client.post(url("follow_up_done", org, follow_up_id=follow_up.pk))

    assert response.status_code == 302
    with unscoped():
        follow_up.refresh_from_db()
    assert follow_up.completed_by == recruiter_user


def test_a_sequence_task_done_counts_as_contact_and_a_reminder_does_not(
    recruiter_client, org, recruiter_user, make_candidates, unscoped
):
    task_for, reminded = make_candidates(2)
    task = FollowUpFactory(
        candidate=task_for, owner=recruiter_user, source=FollowUp.Source.CAMPAIGN
    )
    reminder = FollowUpFactory(candidate=reminded, owner=recruiter_user)

    for follow_up in (task, reminder):
        response = recruiter_client.post(url("follow_up_done", org, follow_up_id=follow_up.pk))
        assert response.status_code == 302

    with unscoped():
        task.refresh_from_db()
        contacted = [candidate_last_contacted(c) for c in (task_for, reminded)]
    assert contacted == [task.completed_at, None]


def test_follow_up_done_viewer_is_403(viewer_client, org, make_candidates):
    (candidate,) = make_candidates(1)
    follow_up = FollowUpFactory(candidate=candidate)

    assert (
        viewer_client.post(url("follow_up_done", org, follow_up_id=follow_up.pk)).status_code == 403
    )


# --- changing a follow-up ---


def test_follow_up_edit_moves_the_date_and_records_it(
    recruiter_client, org, recruiter_user, admin_user, make_candidates, unscoped
):
    (candidate,) = make_candidates(1)
    follow_up = FollowUpFactory(
        candidate=candidate, owner=recruiter_user, due_on=date(2030, 1, 10), note="Call"
    )
    edit = url("follow_up_edit", org, follow_up_id=follow_up.pk)

    page = recruiter_client.get(edit)
    with mock.patch("django.utils.timezone.now", return_value=_at(2030, 1, 10, 9)):
        response = recruiter_client.post(
            edit + "?next=/o/acme/pools/follow-ups/",
            {"due_on": "2030-02-01", "note": "Call after the offsite", "owner": admin_user.pk},
        )

    assert page.status_code == 200
    assert "Change the follow-up with" in page.content.decode()
    assert response.status_code == 302
    assert response["Location"] == "/o/acme/pools/follow-ups/"
    with unscoped():
        follow_up.refresh_from_db()
        summaries = list(
            Activity.objects.filter(kind="follow_up").values_list("summary", flat=True)
        )
    assert (follow_up.due_on, follow_up.note, follow_up.owner) == (
        date(2030, 2, 1),
        "Call after the offsite",
        admin_user,
    )
    assert summaries == ["Follow-up moved to 1 Feb 2030: Call after the offsite"]


def test_follow_up_edit_invalid_date_shows_the_error(recruiter_client, org, make_candidates):
    (candidate,) = make_candidates(1)
    follow_up = FollowUpFactory(candidate=candidate)

    response = recruiter_client.post(
        url("follow_up_edit", org, follow_up_id=follow_up.pk), {"due_on": "someday"}
    )

    assert response.status_code == 200
    assert "Enter a valid date." in response.content.decode()


def test_follow_up_edit_and_later_are_for_writers(viewer_client, org, make_candidates):
    (candidate,) = make_candidates(1)
    follow_up = FollowUpFactory(candidate=candidate)

    assert viewer_client.get(url("follow_up_edit", org, follow_up_id=follow_up.pk)).status_code == (
        403
    )
    assert (
        viewer_client.post(url("follow_up_later", org, follow_up_id=follow_up.pk), {"days": "7"})
    ).status_code == 403


@pytest.mark.parametrize(
    ("due_in", "days", "expected_in"),
    [(-5, 7, 7), (0, 1, 1), (10, 30, 40)],
    ids=["overdue-from-today", "due-today", "ahead-from-its-date"],
)
def test_follow_up_later_pushes_it_from_today_or_from_its_date(
    recruiter_client, org, recruiter_user, make_candidates, unscoped, due_in, days, expected_in
):
    (candidate,) = make_candidates(1)
    today = timezone.localdate()
    follow_up = FollowUpFactory(
        candidate=candidate, owner=recruiter_user, due_on=today + timedelta(days=due_in)
    )

    response = recruiter_client.post(
        url("follow_up_later", org, follow_up_id=follow_up.pk), {"days": str(days)}
    )

    assert response.status_code == 302
    with unscoped():
        follow_up.refresh_from_db()
    assert follow_up.due_on == today + timedelta(days=expected_in)


@pytest.mark.parametrize("due_on", [date(9999, 12, 31), None], ids=["date-max", "at-the-limit"])
def test_follow_up_later_beyond_the_limit_is_refused_not_an_error(
    recruiter_client, org, make_candidates, unscoped, due_on
):
    """A follow-up stored before the forms bounded the date (9999-12-31) overflowed
    `date + timedelta` and gave a 500."""
    (candidate,) = make_candidates(1)
    due_on = due_on or services.latest_date_ahead(today=timezone.localdate())
    follow_up = FollowUpFactory(candidate=candidate, due_on=due_on)

    response = recruiter_client.post(
        url("follow_up_later", org, follow_up_id=follow_up.pk), {"days": "7"}, follow=True
    )

    assert response.status_code == 200
    assert "A follow-up can be at most 5 years ahead" in response.content.decode()
    with unscoped():
        follow_up.refresh_from_db()
    assert follow_up.due_on == due_on


def test_follow_up_later_with_an_odd_choice_changes_nothing(
    recruiter_client, org, make_candidates, unscoped
):
    (candidate,) = make_candidates(1)
    follow_up = FollowUpFactory(candidate=candidate, due_on=date(2030, 1, 10))

    response = recruiter_client.post(
        url("follow_up_later", org, follow_up_id=follow_up.pk), {"days": "365"}, follow=True
    )

    assert "Choose when to be reminded again." in response.content.decode()
    with unscoped():
        follow_up.refresh_from_db()
    assert follow_up.due_on == date(2030, 1, 10)
    assert (
        recruiter_client.get(url("follow_up_later", org, follow_up_id=follow_up.pk)).status_code
        == 405
    )


def test_my_follow_ups_offer_later_and_a_date_picker(
    recruiter_client, org, recruiter_user, make_candidates
):
    (candidate,) = make_candidates(1)
    follow_up = FollowUpFactory(candidate=candidate, owner=recruiter_user)

    body = recruiter_client.get(url("follow_ups", org)).content.decode()

    assert url("follow_up_later", org, follow_up_id=follow_up.pk) in body
    assert 'name="days" value="7"' in body
    assert url("follow_up_edit", org, follow_up_id=follow_up.pk) in body


# --- the daily digest ---


def test_digest_contents(
    org, recruiter_user, make_candidates, in_org, django_capture_on_commit_callbacks
):
    overdue, due, later = make_candidates(3)
    today = date(2030, 1, 10)
    FollowUpFactory(candidate=overdue, owner=recruiter_user, due_on=date(2030, 1, 7), note="Ping")
    FollowUpFactory(candidate=due, owner=recruiter_user, due_on=today, note="Call")
    FollowUpFactory(candidate=later, owner=recruiter_user, due_on=date(2030, 2, 1))

    with (
        in_org(),
        mock.patch("django.utils.timezone.now", return_value=_at(2030, 1, 10, 8, 5)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = services.follow_ups_daily(organization=org)

    assert result == {"reactivated": 0, "digests": 1}
    (email,) = mail.outbox
    assert email.to == [recruiter_user.email]
    assert email.subject == "2 follow-ups due today at Acme Talent"
    assert overdue.full_name in email.body and "3 days ago" in email.body and "Ping" in email.body
    assert due.full_name in email.body and "Call" in email.body
    assert later.full_name not in email.body
    assert "List-Unsubscribe" not in email.extra_headers
    html = email.alternatives[0][0]
    assert overdue.full_name in html


def test_digest_schedule_only_in_the_digest_hour_and_once_a_day(
    org, recruiter_user, make_candidates, in_org, django_capture_on_commit_callbacks
):
    (candidate,) = make_candidates(1)
    FollowUpFactory(candidate=candidate, owner=recruiter_user, due_on=date(2030, 1, 10))
    sent = []

    def run(moment):
        with (
            in_org(),
            mock.patch("django.utils.timezone.now", return_value=moment),
            django_capture_on_commit_callbacks(execute=True),
        ):
            sent.append(services.follow_ups_daily(organization=org)["digests"])

    run(_at(2030, 1, 10, 7, 45))  # before 08:00 London time
    run(_at(2030, 1, 10, 8, 0))
    run(_at(2030, 1, 10, 8, 15))  # beat again within the hour: no second email
    run(_at(2030, 1, 10, 15, 0))  # the afternoon: no digest
    run(_at(2030, 1, 11, 8, 0))  # next morning: still overdue, a new digest

    assert sent == [0, 1, 0, 0, 1]
    assert len(mail.outbox) == 2
    with scopes_disabled():
        assert FollowUpDigest.objects.count() == 2


class RefusingEmailBackend:
    """A mail server that is down (the outside world): every send raises."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp down")


def test_digest_refused_by_the_mail_server_is_retried_at_the_next_run(
    org, recruiter_user, make_candidates, in_org, django_capture_on_commit_callbacks, settings
):
    (candidate,) = make_candidates(1)
    FollowUpFactory(candidate=candidate, owner=recruiter_user, due_on=date(2030, 1, 10))

    def run(moment):
        with (
            in_org(),
            mock.patch("django.utils.timezone.now", return_value=moment),
            django_capture_on_commit_callbacks(execute=True),
        ):
            return services.follow_ups_daily(organization=org)["digests"]

    settings.EMAIL_BACKEND = f"{__name__}.RefusingEmailBackend"
    run(_at(2030, 1, 10, 8, 0))
    with scopes_disabled():
        assert FollowUpDigest.objects.count() == 0  # the claim was released
    assert mail.outbox == []

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert run(_at(2030, 1, 10, 8, 15)) == 1
    assert run(_at(2030, 1, 10, 8, 30)) == 0

    assert [email.to for email in mail.outbox] == [[recruiter_user.email]]
    with scopes_disabled():
        assert FollowUpDigest.objects.count() == 1


def test_digest_dispatch_fans_out_to_organisations_in_their_morning(org, other_org):
    with scopes_disabled():
        type(other_org).objects.filter(pk=other_org.pk).update(time_zone="America/New_York")
    london_morning = _at(2030, 1, 10, 8, 30)  # 03:30 in New York

    # The broker is the outside world here: record what would be queued.
    with (
        mock.patch("django.utils.timezone.now", return_value=london_morning),
        mock.patch.object(follow_ups_daily_task, "delay") as delay,
    ):
        count = follow_ups_dispatch.run()

    assert count == 1
    delay.assert_called_once_with(organization_id=org.pk)


def test_not_now_candidates_come_back_with_a_follow_up(
    org, recruiter_user, make_candidates, unscoped
):
    back, still_away = make_candidates(2, owner=recruiter_user)
    with scopes_disabled():
        Candidate.objects.filter(pk=back.pk).update(
            status="not_now", not_now_until=date(2030, 1, 10)
        )
        Candidate.objects.filter(pk=still_away.pk).update(
            status="not_now", not_now_until=date(2030, 6, 1)
        )

    with mock.patch("django.utils.timezone.now", return_value=_at(2030, 1, 10, 9)):
        follow_ups_daily_task.apply(kwargs={"organization_id": org.pk})

    with unscoped():
        back.refresh_from_db()
        still_away.refresh_from_db()
        follow_up = FollowUp.objects.get()
        activity = Activity.objects.get(kind="status_changed")
    assert (back.status, back.not_now_until) == ("active", None)
    assert still_away.status == "not_now"
    assert (follow_up.candidate, follow_up.owner, follow_up.due_on, follow_up.source) == (
        back,
        recruiter_user,
        date(2030, 1, 10),
        "not_now",
    )
    assert activity.candidate == back


def test_an_organisation_with_a_time_zone_the_system_no_longer_knows_does_not_stop_the_daily_run(
    org,
):
    from crm.models import Organization
    from tests.factories import OrganizationFactory

    stale = OrganizationFactory(name="Old zone", slug="old-zone")
    with scopes_disabled():
        Organization.objects.filter(pk=stale.pk).update(time_zone="Asia/Nowhere")

    due = services.organizations_due_for_daily_run(now=datetime(2025, 3, 3, 12, 0, tzinfo=UTC))

    assert {org.pk, stale.pk} <= set(due)  # the stale one runs on UTC


def _overdue_marking(org, recruiter_user, make_candidates):
    """Follow-ups due yesterday, today and tomorrow on the calendar of an organisation in Tokyo,
    at a moment when London (and UTC) is still on "yesterday"."""
    org.time_zone = "Asia/Tokyo"
    org.save()
    (candidate,) = make_candidates(1, first_name="Kenji", last_name="Sato")
    for day, note in [(10, "Yesterday's"), (11, "Today's"), (12, "Tomorrow's")]:
        FollowUpFactory(
            candidate=candidate, owner=recruiter_user, due_on=date(2030, 1, day), note=note
        )
    # 20:00 UTC on the 10th is 05:00 on the 11th in Tokyo.
    return candidate, datetime(2030, 1, 10, 20, tzinfo=UTC)


def test_follow_ups_page_marks_the_overdue_ones_like_the_dashboard(
    recruiter_client, org, recruiter_user, make_candidates
):
    from crm.tests.markup import elements, text

    _candidate, now = _overdue_marking(org, recruiter_user, make_candidates)

    with mock.patch("django.utils.timezone.now", return_value=now):
        response = recruiter_client.get(url("follow_ups", org))

    badges = [
        text(element)
        for element in elements(response.content.decode())
        if element.name == "span" and "text-bg-warning" in dict(element.attributes).get("class", "")
    ]
    assert badges == ["Overdue · Thu 10 Jan 2030"]


def test_profile_marks_overdue_follow_ups_on_the_organisations_calendar(
    recruiter_client, org, recruiter_user, make_candidates
):
    from crm.tests.markup import attributes, elements, text

    candidate, now = _overdue_marking(org, recruiter_user, make_candidates)

    with mock.patch("django.utils.timezone.now", return_value=now):
        response = recruiter_client.get(reverse("candidates:detail", args=[org.slug, candidate.pk]))

    card = next(
        element
        for element in elements(response.content.decode())
        if attributes(element).get("aria-labelledby") == "candidate-follow-ups-title"
    )
    items = [text(element) for element in elements(card) if element.name == "li"]
    notes = ["Yesterday's", "Today's", "Tomorrow's"]
    # What each item says before its note.
    assert [item[: item.index(note)].strip() for item, note in zip(items, notes, strict=True)] == [
        "Overdue · 10 Jan 2030",
        "Today",
        "12 Jan 2030",
    ]
