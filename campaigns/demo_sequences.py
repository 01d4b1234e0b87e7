"""A running demo sequence (registered in crm seed_demo's DEMO_SEEDERS, after the pools):
three batches of candidates joined 12, 6 and 1 days ago and the real dispatcher was run over
the past days, so the sequence shows candidates at different steps, a task that became a
follow-up, a branch that ended early, a reply (through the inbound path) that stopped one
candidate and an out-of-office that did not. Deterministic."""

from datetime import time, timedelta

from django.utils import timezone

from campaigns.demo_broadcast import demo_inbound
from campaigns.models import Campaign, Enrollment, Message, Step
from campaigns.services import sequences
from campaigns.services.dispatch import dispatch_due
from candidates.models import Candidate
from crm.models import Role
from pipelines.models import Pool

NAME = "Backend engineers: keep warm"
STEPS = [
    {
        "kind": Step.Kind.EMAIL,
        "subject": "{{ first_name }}, the platform team is growing",
        "body_markdown": (
            'Hi {{ first_name|default("there") }},\n\n'
            "We are planning next year's platform team and thought of you. "
            "[Here is what the team works on](https://northwind.example/platform).\n\n"
            "{{ recruiter.name }}"
        ),
    },
    {
        "kind": Step.Kind.TASK,
        "delay": timedelta(days=3),
        "condition": Step.Condition.NOT_REPLIED,
        "task_note": "Call them: do they want to hear about the platform roles?",
    },
    {
        "kind": Step.Kind.EMAIL,
        "delay": timedelta(days=4),
        "condition": Step.Condition.NOT_CLICKED,
        "subject": "Still thinking about platform work, {{ first_name }}?",
        "body_markdown": (
            "Hi {{ first_name }},\n\nNo pressure: if the timing is wrong, just reply and I "
            "will check back in the spring.\n\n{{ recruiter.name }}"
        ),
    },
]


def _run_until(*, organization, now, step_at) -> None:
    """Dispatch every due step in time order up to `now`, as beat would have; each email
    counts as sent and delivered at once, and some candidates open, click or reply."""
    for _ in range(50):
        due = (
            Enrollment.objects.filter(
                organization=organization, status=Enrollment.Status.ACTIVE, next_run_at__lte=now
            )
            .order_by("next_run_at")
            .values_list("next_run_at", flat=True)
            .first()
        )
        if due is None:
            return
        dispatch_due(now=due, organization_id=organization.pk)
        new = Message.objects.filter(organization=organization, status=Message.Status.QUEUED)
        step_at(list(new.order_by("pk")), due)


def seed_demo_sequence(*, organization, users, stdout) -> None:
    recruiter = users.get(Role.RECRUITER)
    pool = Pool.objects.filter(organization=organization, name="Backend engineers").first()
    candidates = list(
        Candidate.objects.live()
        .filter(organization=organization, pool_memberships__pool=pool)
        .exclude(email="")
        .order_by("pk")[:9]
        if pool
        else Candidate.objects.live().filter(organization=organization).order_by("pk")[:9]
    )
    if not candidates:
        return
    now = timezone.now()
    campaign = Campaign.objects.create(
        organization=organization,
        name=NAME,
        kind=Campaign.Kind.SEQUENCE,
        status=Campaign.Status.RUNNING,
        sender=recruiter,
        created_by=recruiter,
        auto_join_pool=pool,
        launched_at=now - timedelta(days=12),
        # Every day 8:00-20:00, so the demo looks the same whatever day it is seeded on.
        window_days=[0, 1, 2, 3, 4, 5, 6],
        window_start=time(8),
        window_end=time(20),
    )
    for position, fields in enumerate(STEPS, start=1):
        Step.objects.create(
            organization=organization, campaign=campaign, position=position, **fields
        )
    counter = {"n": 0}

    def engage(messages: list[Message], at) -> None:
        for message in messages:
            counter["n"] += 1
            # Delivered, as the ESP's webhook would report it seconds later.
            changes = {
                "status": Message.Status.DELIVERED,
                "sent_at": at,
                "delivered_at": at + timedelta(seconds=3),
            }
            if counter["n"] % 2 == 0:
                changes["opened_at"] = at + timedelta(hours=2)
            if counter["n"] % 4 == 0:
                changes["clicked_at"] = at + timedelta(hours=2, minutes=1)
            Message.objects.filter(pk=message.pk).update(**changes)
            if counter["n"] == 3:  # a reply: recorded, on the timeline, ends the sequence
                demo_inbound(
                    message,
                    at=at + timedelta(hours=5),
                    body="Hi! Yes, happy to hear more about the platform team. "
                    "I am free on Thursday afternoon.",
                )
            if counter["n"] == 5:  # an out-of-office: on the timeline, the sequence goes on
                demo_inbound(
                    message,
                    at=at + timedelta(minutes=1),
                    auto=True,
                    body="I am travelling until the 20th and will reply when I am back.",
                )

    for days_ago, batch in ((12, candidates[:4]), (6, candidates[4:7]), (1, candidates[7:])):
        sequences.sequence_enroll(
            campaign=campaign,
            candidate_ids=[c.pk for c in batch],
            now=now - timedelta(days=days_ago),
            summary=f"Joined the campaign “{NAME}”",
        )
        _run_until(
            organization=organization, now=now - timedelta(days=days_ago - 1), step_at=engage
        )
    _run_until(organization=organization, now=now, step_at=engage)
    stdout.write(f"Demo sequence “{NAME}” with {len(candidates)} candidates.")
