"""Retiring a sequence: a paused sequence takes nobody from its auto-join pool (who entered
meanwhile would all get step 1 at once on Resume), and "End sequence" ends one for good —
everyone leaves, queued emails are not sent, nobody joins afterwards. Only the clock is
controlled; the dispatcher, the services and PostgreSQL are real."""

import threading
import time
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction
from django_scopes import scopes_disabled

from campaigns.models import AudienceBatch, Campaign, Enrollment, Message
from campaigns.services import campaigns as campaign_service
from campaigns.services import sequences
from campaigns.services.campaigns import audience_enroll_pending, campaign_launch, sequence_end
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import make_broadcast, make_candidates
from campaigns.tests.test_sequences import (
    TUESDAY_10,
    _auto_join_sequence,
    enrollment_of,
    launched,
    make_sequence,
    messages_of,
    timeline,
    url,
)
from crm.tests.markup import attributes, elements

pytestmark = pytest.mark.django_db


def _pool(org, name="Backend"):
    from pipelines.tests.factories import PoolFactory

    return PoolFactory(organization=org, name=name)


def _enter_pool(pool, candidates, in_org, capture):
    """Candidates enter the pool the way the board does it; returns the auto-join tasks that
    were queued on commit (not run)."""
    from pipelines.services import pool_add_candidates

    with capture(execute=False) as callbacks, in_org():
        pool_add_candidates(pool=pool, candidate_ids=[c.pk for c in candidates], actor=None)
    return callbacks


def _end_forms(page: str) -> list[dict]:
    return [
        attributes(element)
        for element in elements(page)
        if (attributes(element).get("action") or "").endswith("/end/")
    ]


# --- pausing holds the auto-join pool too ---


def test_paused_sequence_takes_nobody_from_its_pool(
    org, recruiter_user, in_org, django_capture_on_commit_callbacks
):
    pool = _pool(org)
    campaign = _auto_join_sequence(org, recruiter_user, pool)
    with scopes_disabled():
        sequences.campaign_pause(campaign=campaign, user=recruiter_user)
    entrant = make_candidates(org, 1)[0]

    queued = _enter_pool(pool, [entrant], in_org, django_capture_on_commit_callbacks)
    # A task queued before the pause that runs after it.
    with in_org():
        joined = sequences.sequences_auto_join(pool_id=pool.pk, candidate_ids=[entrant.pk])

    assert (len(queued), joined) == (0, 0)
    with scopes_disabled():
        assert not Enrollment.objects.filter(campaign=campaign).exists()
        sequences.campaign_resume(
            campaign=campaign, user=recruiter_user, overdue=sequences.Overdue.SEND_NOW
        )
    # Resumed: the next entrant joins as before; who entered during the pause did not.
    (later,) = make_candidates(org, 1)
    with in_org():
        assert sequences.sequences_auto_join(pool_id=pool.pk, candidate_ids=[later.pk]) == 1
    with scopes_disabled():
        enrolled = set(
            Enrollment.objects.filter(campaign=campaign).values_list("candidate_id", flat=True)
        )
    assert enrolled == {later.pk}


def test_a_recruiter_may_still_enroll_into_a_paused_sequence(org, recruiter_user):
    """Only the pool stops feeding it; candidates a recruiter enrolls wait for Resume."""
    campaign, _ = launched(org, recruiter_user, [{}], candidates=0)
    (person,) = make_candidates(org, 1)
    with scopes_disabled():
        sequences.campaign_pause(campaign=campaign, user=recruiter_user)
        joined = sequences.sequence_enroll(campaign=campaign, candidate_ids=[person.pk])
    assert joined == 1
    assert enrollment_of(campaign, person).status == "active"


def test_paused_sequence_page_says_pool_entrants_do_not_join(recruiter_client, org, recruiter_user):
    campaign = _auto_join_sequence(org, recruiter_user, _pool(org))
    with scopes_disabled():
        sequences.campaign_pause(campaign=campaign, user=recruiter_user)
    page = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    assert "Candidates who enter the pool “Backend” meanwhile do not join it." in page
    assert "(paused: nobody joins meanwhile)" in page


# --- ending a sequence ---


def test_end_sequence_stops_everyone_skips_queued_emails_and_takes_nobody_after(
    recruiter_client, org, recruiter_user, in_org, django_capture_on_commit_callbacks
):
    pool = _pool(org)
    campaign = _auto_join_sequence(org, recruiter_user, pool)
    waiting, queued = make_candidates(org, 2)
    with in_org():
        sequences.sequences_auto_join(pool_id=pool.pk, candidate_ids=[waiting.pk, queued.pk])
        # `queued`'s first step is written and waits in the outbox (a capped email, say).
        Enrollment.objects.filter(campaign=campaign, candidate=queued).update(
            next_run_at=TUESDAY_10
        )
    dispatch_due(now=TUESDAY_10)
    assert messages_of(campaign) == [(1, "queued")]

    response = recruiter_client.post(url("sequence_end", org, campaign.pk))

    assert response.status_code == 302
    assert response["Location"] == url("detail", org, campaign.pk)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "The sequence has ended: 2 candidates left it, and nobody joins it any more."
    ]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert campaign.finished_at is not None
    with scopes_disabled():
        ended = list(
            Enrollment.objects.filter(campaign=campaign).values_list("status", "stop_reason")
        )
        message = Message.objects.get(campaign=campaign)
    assert ended == [("stopped", "cancelled")] * 2
    assert (message.status, message.skip_reason) == ("skipped", "campaign_cancelled")
    assert timeline(waiting)[-1] == "Left the campaign “Platform nurture”: the campaign was ended"
    # Nobody joins afterwards: no task is queued, and one queued before the end enrolls nobody.
    (newcomer,) = make_candidates(org, 1)
    assert _enter_pool(pool, [newcomer], in_org, django_capture_on_commit_callbacks) == []
    with in_org():
        assert sequences.sequences_auto_join(pool_id=pool.pk, candidate_ids=[newcomer.pk]) == 0
    # Nothing more is written, however long one waits.
    dispatch_due(now=TUESDAY_10 + timedelta(days=30))
    assert messages_of(campaign) == [(1, "skipped")]


def test_end_a_paused_sequence_and_it_cannot_be_resumed(recruiter_client, org, recruiter_user):
    campaign, (person,) = launched(org, recruiter_user, [{"delay": timedelta(days=2)}])
    with scopes_disabled():
        sequences.campaign_pause(campaign=campaign, user=recruiter_user)

    recruiter_client.post(url("sequence_end", org, campaign.pk))
    resumed = recruiter_client.get(url("resume", org, campaign.pk), follow=True)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert enrollment_of(campaign, person).stop_reason == "cancelled"
    assert "Only a paused campaign can be resumed." in resumed.content.decode()


def test_end_sequence_is_offered_with_a_confirmation_and_the_page_then_says_it_ended(
    recruiter_client, org, recruiter_user
):
    campaign = _auto_join_sequence(org, recruiter_user, _pool(org))
    running = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()
    recruiter_client.post(url("sequence_end", org, campaign.pk))
    ended = recruiter_client.get(url("detail", org, campaign.pk)).content.decode()

    (form,) = _end_forms(running)
    assert form["method"] == "post"
    assert form["data-confirm"].startswith("End “Platform nurture”? Everyone still in it leaves")
    assert _end_forms(ended) == []
    assert "Ended " in ended and "no step goes out and nobody joins it any more." in ended
    assert "(ended: nobody joins any more)" in ended
    assert url("pause", org, campaign.pk) not in ended
    assert url("sequence_edit", org, campaign.pk) not in ended


def test_end_sequence_is_not_offered_to_viewers(viewer_client, org, recruiter_user):
    campaign, _ = launched(org, recruiter_user, [{}])
    page = viewer_client.get(url("detail", org, campaign.pk)).content.decode()
    assert _end_forms(page) == []


def test_end_an_ended_or_draft_sequence_is_refused_without_error(
    recruiter_client, org, recruiter_user
):
    campaign, _ = launched(org, recruiter_user, [{}])
    draft = make_sequence(org, user=recruiter_user, steps=[{}], name="Draft")
    recruiter_client.post(url("sequence_end", org, campaign.pk))

    again = recruiter_client.post(url("sequence_end", org, campaign.pk), follow=True)
    of_draft = recruiter_client.post(url("sequence_end", org, draft.pk), follow=True)

    assert "This sequence has already ended." in again.content.decode()
    assert "This sequence has already ended." in of_draft.content.decode()
    draft.refresh_from_db()
    assert draft.status == Campaign.Status.DRAFT


def test_end_is_for_sequences_only(recruiter_client, org, recruiter_user):
    broadcast = make_broadcast(org, user=recruiter_user)
    assert recruiter_client.post(url("sequence_end", org, broadcast.pk)).status_code == 404
    with scopes_disabled(), pytest.raises(ValidationError):
        sequence_end(campaign=broadcast, user=recruiter_user)


def test_end_sequence_access(client, viewer_client, outsider_client, org, recruiter_user):
    campaign, (person,) = launched(org, recruiter_user, [{}])
    anonymous = client.post(url("sequence_end", org, campaign.pk))
    viewer = viewer_client.post(url("sequence_end", org, campaign.pk))
    outsider = outsider_client.post(url("sequence_end", org, campaign.pk))
    viewer_get = viewer_client.get(url("sequence_end", org, campaign.pk))

    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert (viewer.status_code, outsider.status_code, viewer_get.status_code) == (403, 404, 405)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert enrollment_of(campaign, person).status == "active"


def test_end_drops_the_rest_of_the_launch_audience(org, recruiter_user, monkeypatch):
    """Launched to more than one batch: the rest waits for `campaigns.enroll`, which must then
    find nobody to enroll."""
    monkeypatch.setattr(campaign_service, "AUDIENCE_FIRST_BATCH", 2)
    monkeypatch.setattr(campaign_service, "AUDIENCE_BATCH", 2)
    make_candidates(org, 5)
    campaign = make_sequence(org, user=recruiter_user, steps=[{"delay": timedelta(days=1)}])
    with scopes_disabled():
        campaign_launch(campaign=campaign, user=recruiter_user, now=TUESDAY_10)
        assert AudienceBatch.objects.filter(campaign=campaign).count() == 2

        assert sequence_end(campaign=campaign, user=recruiter_user) == 2
        enrolled_later = audience_enroll_pending(campaign_id=campaign.pk)
        statuses = list(
            Enrollment.objects.filter(campaign=campaign).values_list("status", flat=True)
        )

    assert enrolled_later == 0
    assert statuses == ["stopped", "stopped"]
    with scopes_disabled():
        assert not AudienceBatch.objects.filter(campaign=campaign).exists()


# --- an enrollment under way and an end at the same moment ---


def _waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _first_holds_while_second_runs(first_body, second_body):
    """`first_body` runs in a transaction that stays open until `second_body` (in another
    thread) waits for a lock; then the first commits. Returns (first's, second's) results and
    whether the second waited."""
    done_first, commit_first = threading.Event(), threading.Event()
    results = {}

    def first():
        try:
            with scopes_disabled(), transaction.atomic():
                results["first"] = first_body()
                done_first.set()
                commit_first.wait(timeout=30)
        finally:
            connections.close_all()

    def second():
        try:
            with scopes_disabled():
                results["second"] = second_body()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert done_first.wait(timeout=30)
    threads[1].start()
    deadline = time.monotonic() + 30
    while _waiting_for_a_lock() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    waited = _waiting_for_a_lock() == 1
    commit_first.set()
    for thread in threads:
        thread.join(timeout=60)
    return results.get("first"), results.get("second"), waited


@pytest.mark.django_db(transaction=True)
def test_an_enrollment_that_waited_for_the_end_finds_the_sequence_ended(org, recruiter_user):
    campaign, _ = launched(org, recruiter_user, [{"delay": timedelta(days=1)}], candidates=0)
    ids = [c.pk for c in make_candidates(org, 2)]

    ended, joined, waited = _first_holds_while_second_runs(
        lambda: sequence_end(campaign=campaign, user=recruiter_user),
        lambda: sequences.sequence_enroll(campaign=campaign, candidate_ids=ids),
    )

    assert (ended, joined, waited) == (0, 0, True)
    with scopes_disabled():
        assert not Enrollment.objects.filter(campaign=campaign).exists()


@pytest.mark.django_db(transaction=True)
def test_an_end_that_waited_for_an_enrollment_stops_those_it_enrolled(org, recruiter_user):
    campaign, _ = launched(org, recruiter_user, [{"delay": timedelta(days=1)}], candidates=0)
    ids = [c.pk for c in make_candidates(org, 2)]

    joined, ended, waited = _first_holds_while_second_runs(
        lambda: sequences.sequence_enroll(campaign=campaign, candidate_ids=ids),
        lambda: sequence_end(campaign=campaign, user=recruiter_user),
    )

    assert (joined, ended, waited) == (2, 2, True)
    with scopes_disabled():
        statuses = set(
            Enrollment.objects.filter(campaign=campaign).values_list("status", flat=True)
        )
    assert statuses == {"stopped"}
