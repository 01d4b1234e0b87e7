"""What keeps a draft from launching: a chosen time that has passed (launching would send at
once while the button said "Schedule for <that time>") and an archived topic (which candidates
could not opt out of). And the preference centre of a candidate whose running sequence's
topic was archived since: it still offers that topic."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import Campaign, CandidateEmailPreference, Enrollment, Message
from campaigns.services.campaigns import campaign_launch, campaign_launch_problems
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.services.sequences import step_run_at
from campaigns.services.tokens import candidate_token
from campaigns.services.topics import topic_archive, topics_for
from campaigns.tests.factories import make_broadcast, make_candidates
from campaigns.tests.test_sequences import make_sequence


def _url(name, org, campaign) -> str:
    return reverse(f"campaigns:{name}", args=[org.slug, campaign.pk])


def _reread(campaign) -> Campaign:
    with scopes_disabled():
        return Campaign.objects.get(pk=campaign.pk)


def _settings_post(campaign, **fields) -> dict:
    with scopes_disabled():
        data = {
            "name": campaign.name,
            "topic": campaign.topic,
            "saved_searches": [s.pk for s in campaign.saved_searches.all()],
            "send_when": "now",
            "interest_include_unstated": "on",
        }
    return {**data, **fields}


def _archive(org, key: str):
    with scope(organization=org):
        topic = next(t for t in topics_for(organization=org) if t.key == key)
        return topic_archive(topic=topic)


# --- a chosen time that has passed ---


def test_draft_whose_time_has_passed_says_so_and_does_not_launch(
    org, recruiter_user, recruiter_client
):
    make_candidates(org, 1)
    when = datetime(2025, 3, 4, 9, 30, tzinfo=ZoneInfo("Europe/London"))  # org's zone
    campaign = make_broadcast(org, user=recruiter_user, scheduled_at=when)
    problem = (
        "The time you chose, 4 Mar 2025, 09:30, has passed: in Settings, choose a new time "
        "or “As soon as I launch it”."
    )

    page = recruiter_client.get(_url("detail", org, campaign)).content.decode()
    response = recruiter_client.post(_url("launch", org, campaign))

    assert "Not ready to launch" in page
    assert problem in page
    assert "Schedule for" not in page
    assert [str(m) for m in get_messages(response.wsgi_request)] == [problem]
    assert _reread(campaign).status == Campaign.Status.DRAFT
    with scopes_disabled():
        assert not Enrollment.objects.filter(campaign=campaign).exists()


def test_draft_whose_time_has_passed_launches_once_told_to_send_now(
    org, recruiter_user, recruiter_client
):
    make_candidates(org, 2)
    campaign = make_broadcast(
        org, user=recruiter_user, scheduled_at=timezone.now() - timedelta(hours=20)
    )

    saved = recruiter_client.post(_url("broadcast_edit", org, campaign), _settings_post(campaign))
    page = recruiter_client.get(_url("detail", org, campaign)).content.decode()
    launched = recruiter_client.post(_url("launch", org, campaign))

    assert saved.status_code == 302
    assert "Launch now" in page
    assert [str(m) for m in get_messages(launched.wsgi_request)] == [
        "Launched: sending to 2 candidates now."
    ]
    assert _reread(campaign).status == Campaign.Status.RUNNING


def test_launch_counts_the_time_from_the_moment_it_is_given(org, recruiter_user):
    when = timezone.now() + timedelta(hours=2)
    campaign = make_broadcast(org, user=recruiter_user, scheduled_at=when)
    with scopes_disabled():
        before = campaign_launch_problems(campaign=campaign, now=when - timedelta(minutes=1))
        after = campaign_launch_problems(campaign=campaign, now=when)
    assert before == []
    assert len(after) == 1 and "has passed" in after[0]


# --- an archived topic ---


def test_draft_on_an_archived_topic_does_not_launch_until_another_is_chosen(
    org, recruiter_user, recruiter_client
):
    make_candidates(org, 1)
    campaign = make_broadcast(org, user=recruiter_user, topic="events")
    _archive(org, "events")
    problem = (
        "The topic “Events” is archived: choose another in Settings, or restore it in "
        "Settings → Email topics."
    )

    refused = recruiter_client.post(_url("launch", org, campaign))
    settings_page = recruiter_client.get(_url("broadcast_edit", org, campaign)).content.decode()
    recruiter_client.post(
        _url("broadcast_edit", org, campaign), _settings_post(campaign, topic="jobs")
    )
    launched = recruiter_client.post(_url("launch", org, campaign))

    assert [str(m) for m in get_messages(refused.wsgi_request)] == [problem]
    assert "Events (archived)" in settings_page
    assert [str(m) for m in get_messages(launched.wsgi_request)][-1] == (
        "Launched: sending to 1 candidates now."
    )
    assert _reread(campaign).topic == "jobs"


def test_running_sequence_whose_topic_is_archived_can_still_be_opted_out_of(
    org, recruiter_user, client
):
    receiving, other = make_candidates(org, 1)[0], make_candidates(org, 1, tags=["x"])[0]
    sequence = make_sequence(
        org,
        user=recruiter_user,
        topic="events",
        steps=[{"delay": timedelta(days=2)}, {"delay": timedelta(days=3)}],
    )
    with scopes_disabled():
        campaign_launch(campaign=sequence, user=recruiter_user)
    _archive(org, "events")

    def page_of(candidate):
        token = candidate_token(organization_id=org.pk, candidate_id=candidate.pk)
        return reverse("campaigns_public:preferences", args=[token])

    shown = client.get(page_of(receiving)).content.decode()
    hidden = client.get(page_of(other)).content.decode()
    saved = client.post(
        page_of(receiving),
        {"topics": ["jobs", "newsletter"], "pause_months": "0", "current_title": "", "city": ""},
    )
    with scopes_disabled():
        preference = CandidateEmailPreference.objects.get(candidate=receiving)
    # The opt-out holds for the sequence's next email.
    with scope(organization=org):
        # Two days after launch, moved into the sending window: a launch late in the day
        # leaves the step due after 17:00, when the dispatcher only moves it to the morning.
        due = step_run_at(
            campaign=sequence,
            candidate=receiving,
            due=Enrollment.objects.get(campaign=sequence).next_run_at,
        )
        dispatch_due(now=due + timedelta(seconds=30))
        message = Message.objects.get(campaign=sequence)
        messages_send(organization=org, message_ids=[message.pk])
        message.refresh_from_db()

    assert 'value="events"' in shown and "Events" in shown
    assert 'value="events"' not in hidden
    assert saved.status_code == 200
    assert preference.opted_out_topics == ["events"]
    assert message.skip_reason == Message.SkipReason.TOPIC_OPTED_OUT
