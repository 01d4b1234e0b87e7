"""The demo's templates and a broadcast that went out five days ago (registered in crm
seed_demo's DEMO_SEEDERS, after the pools): the real launch and dispatcher wrote its Messages;
deliveries, opens, clicks, a bounce, an unsubscribe and a machine open (a security scanner)
are then recorded as the ESP's webhooks and the tracking endpoints would have, and a reply and
an out-of-office go through the inbound path. Deterministic."""

from datetime import timedelta
from email.utils import format_datetime

from anymail.inbound import AnymailInboundMessage
from django.utils import timezone

from analytics.services import engagement_events_record_bulk
from campaigns.models import (
    Campaign,
    DefaultTopic,
    Enrollment,
    Message,
    SenderProfile,
    Suppression,
)
from campaigns.services.campaigns import campaign_create_broadcast, campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.preferences import candidate_unsubscribe
from campaigns.services.replies import inbound_email_record
from campaigns.services.templates import email_template_create
from candidates.models import Activity
from candidates.services.activities import activities_record_bulk, candidates_mark_contacted
from crm.models import Role
from pipelines.models import Pool

TEMPLATES = [
    {
        "name": "Quarterly newsletter",
        "subject": "{{ first_name|default('Hello') }}, what's new at {{ organization_name }}",
        "preheader": "Teams that are growing, and a few stories from inside",
        "body_markdown": (
            'Hi {{ first_name|default("there") }},\n\n'
            "A short update from {{ organization_name }}: three teams are growing this "
            "quarter, and we would love to keep you in the loop.\n\n"
            "- [Open roles](https://northwind.example/careers)\n"
            "- [How we work](https://northwind.example/blog/how-we-work)\n\n"
            "Best,\n{{ recruiter.name }}"
        ),
    },
    {
        "name": "Checking in",
        "subject": "Checking in, {{ first_name }}",
        "preheader": "",
        "body_markdown": (
            "Hi {{ first_name }},\n\nIt has been a while since we last spoke. Are you still "
            "enjoying your work{% if current_company %} at {{ current_company }}{% endif %}? "
            "If the timing is ever right, I would love to catch up.\n\n"
            "{{ recruiter.signature|default(recruiter.name) }}"
        ),
    },
]
NAME = "Silver medallists: what's new this quarter"


def demo_inbound(message: Message, *, at, body: str, auto: bool = False) -> None:
    """An email back from the candidate, through the same path as the ESP's inbound webhook
    (matched by In-Reply-To; an out-of-office is flagged and recorded as such)."""
    candidate = message.candidate
    headers = {
        "From": f"{candidate.first_name} {candidate.last_name} <{message.to_email}>",
        "To": message.reply_to or message.from_email,
        "Subject": f"{'Out of office' if auto else 'Re'}: {message.subject}",
        "Message-ID": f"<demo-{'auto' if auto else 'reply'}-{message.pk}@mail.example.net>",
        "Date": format_datetime(at),
        "In-Reply-To": message.message_id,
    }
    if auto:
        headers["Auto-Submitted"] = "auto-replied"
    raw = "\r\n".join(f"{name}: {value}" for name, value in headers.items())
    inbound_email_record(message=AnymailInboundMessage.parse_raw_mime(f"{raw}\r\n\r\n{body}"))


def seed_demo_broadcast(*, organization, users, stdout) -> None:
    recruiter = users.get(Role.RECRUITER)
    if recruiter is not None:
        SenderProfile.objects.get_or_create(
            organization=organization,
            user=recruiter,
            defaults={
                "signature": f"{recruiter.display_name}\n{recruiter.job_title}, "
                f"{organization.name}\nOpen roles: https://northwind.example/careers"
            },
        )
    templates = [
        email_template_create(organization=organization, user=recruiter, **fields)
        for fields in TEMPLATES
    ]
    pool = Pool.objects.filter(organization=organization, name="Silver medallists").first()
    if pool is None:
        return
    launched = timezone.now() - timedelta(days=5)
    campaign = campaign_create_broadcast(
        organization=organization,
        user=recruiter,
        name=NAME,
        topic=DefaultTopic.NEWSLETTER,
        template=templates[0],
        saved_searches=[],
        pools=[pool],
    )
    campaign_launch(campaign=campaign, user=recruiter, now=launched)
    dispatch_due(now=launched, organization_id=organization.pk)
    messages = list(
        Message.objects.filter(campaign=campaign, status=Message.Status.QUEUED)
        .select_related("candidate")
        .order_by("pk")
    )
    events = []
    replies, auto_replies = [], []

    def event(message, kind, at, **extra):
        events.append(
            {
                "organization_id": organization.pk,
                "kind": kind,
                "candidate_id": message.candidate_id,
                "campaign_id": campaign.pk,
                "message_id": message.pk,
                "occurred_at": at,
                **extra,
            }
        )

    for index, message in enumerate(messages):
        sent = launched + timedelta(seconds=2 + index)
        changes = {"status": Message.Status.DELIVERED, "sent_at": sent, "delivered_at": sent}
        event(message, "sent", sent)
        if index == 5:  # a hard bounce: suppressed from now on
            changes = {"status": Message.Status.BOUNCED, "sent_at": sent}
            event(message, "bounced", sent + timedelta(seconds=20), data={"type": "hard"})
            Suppression.objects.get_or_create(
                organization=organization,
                email=message.to_email.lower(),
                defaults={"reason": Suppression.Reason.BOUNCED},
            )
        else:
            event(message, "delivered", sent + timedelta(seconds=3))
        if index == 1:  # a link scanner fetched the pixel seconds after delivery
            event(
                message,
                "opened",
                sent + timedelta(seconds=4),
                is_machine=True,
                machine_reason="seconds_after_send",
            )
        if index % 2 == 0 and index != 5:
            opened = sent + timedelta(hours=3 + index)
            changes["opened_at"] = opened
            event(message, "opened", opened)
            if index % 4 == 0:
                changes["clicked_at"] = opened + timedelta(minutes=1)
                event(message, "clicked", opened + timedelta(minutes=1))
        Message.objects.filter(pk=message.pk).update(**changes)
        if index == 7:  # through the same service as the one-click unsubscribe
            candidate_unsubscribe(candidate=message.candidate, message_id=message.pk, source="demo")
        if index == 4:  # a reply, after reading the email
            replies.append((message, sent + timedelta(hours=9)))
        if index == 9:  # an out-of-office answer: on the timeline, not counted as a reply
            auto_replies.append((message, sent + timedelta(minutes=2)))
    engagement_events_record_bulk(events=events)
    for message, at in replies:
        demo_inbound(
            message,
            at=at,
            body="Thanks for thinking of me! The platform team sounds interesting. "
            "Could we talk next week?\n\nOn Monday you wrote:\n> A short update",
        )
    for message, at in auto_replies:
        demo_inbound(
            message,
            at=at,
            auto=True,
            body="I am on parental leave until 3 March with no access to email. "
            "For anything urgent, please contact my team.",
        )
    # The timeline entries the send task and the tracking flush write (with their real times).
    verbs = {
        "sent": (Activity.Kind.EMAIL_SENT, "Campaign email sent"),
        "opened": (Activity.Kind.EMAIL_OPENED, "Opened"),
        "clicked": (Activity.Kind.EMAIL_CLICKED, "Clicked a link in"),
    }
    for item in events:
        if item["kind"] in verbs and not item.get("is_machine"):
            kind, verb = verbs[item["kind"]]
            activities_record_bulk(
                organization_id=organization.pk,
                candidate_ids=[item["candidate_id"]],
                kind=kind,
                summary=f"{verb}: {NAME}",
                data={"campaign_id": campaign.pk},
                occurred_at=item["occurred_at"],
            )
    candidates_mark_contacted(candidate_ids=[m.candidate_id for m in messages], at=launched)
    Enrollment.objects.filter(campaign=campaign).update(status=Enrollment.Status.DONE)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.DONE)
    stdout.write(f"Demo templates and the broadcast “{NAME}” to {len(messages)} candidates.")
