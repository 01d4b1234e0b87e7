"""Tenant-scoped reads of the campaigns app. Views load objects through these and get a 404
for anything that is not the current organisation's (the same answer for missing and
foreign)."""

from zoneinfo import ZoneInfo

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from campaigns.models import (
    Campaign,
    DefaultTopic,
    EmailSettings,
    EmailTemplate,
    Enrollment,
    Message,
    RoleFamily,
    Step,
    Topic,
)

MESSAGES_PAGE_SIZE = 50
CAMPAIGNS_PAGE_SIZE = 25
# An email that went out: a bounce went out too, so it counts as sent (and in every rate's
# denominator) as well as bounced.
SENT_STATES = [Message.Status.SENT, Message.Status.DELIVERED, Message.Status.BOUNCED]


def _topic_name() -> Coalesce:
    """The name of the campaign's topic (topics are per organisation, referred to by key).
    An organisation gets its default topics on first use (services/topics.py): until then a
    default key is named by its default label, not shown as the bare key."""
    return Coalesce(
        Subquery(
            Topic.objects.filter(
                organization=OuterRef("organization"), key=OuterRef("topic")
            ).values("name")[:1]
        ),
        Case(*(When(topic=key, then=Value(label)) for key, label in DefaultTopic.choices)),
    )


class _KeyIn(Func):
    """`key = ANY(<the outer row's array of keys>)`: whether a Topic's or RoleFamily's key is
    one of those the outer row stores."""

    template = "%(expressions)s)"
    arg_joiner = " = ANY("
    output_field = BooleanField()

    def __init__(self, keys_field: str):
        super().__init__(F("key"), OuterRef(keys_field))


def _role_family_names(keys_field: str) -> ArraySubquery:
    """The names of the role families whose keys the outer row's array holds, in the
    organisation's order (archived ones too: a choice made before stays)."""
    return ArraySubquery(
        RoleFamily.objects.filter(_KeyIn(keys_field), organization=OuterRef("organization"))
        .order_by("position", "name")
        .values("name")
    )


def campaign_get(*, organization, campaign_id: int) -> Campaign:
    return get_object_or_404(
        Campaign.objects.select_related(
            "template", "sender", "created_by", "organization"
        ).annotate(
            topic_name=_topic_name(),
            interest_family_names=_role_family_names("interest_role_families"),
        ),
        organization=organization,
        pk=campaign_id,
    )


def email_template_get(*, organization, template_id: int) -> EmailTemplate:
    return get_object_or_404(EmailTemplate, organization=organization, pk=template_id)


def campaign_first_step(*, campaign: Campaign) -> Step | None:
    return campaign.steps.order_by("position").first()


def campaign_message_get(*, campaign: Campaign, message_id: int) -> Message:
    return get_object_or_404(
        Message.objects.select_related("candidate", "step"),
        organization_id=campaign.organization_id,
        campaign=campaign,
        pk=message_id,
    )


def email_settings_for(*, organization) -> EmailSettings:
    settings, _ = EmailSettings.objects.get_or_create(organization=organization)
    return settings


def campaigns_for_list(*, organization):
    """Campaigns, newest first, each with its audience (enrolled) and sent counts: one query
    (per page of the list: campaign_list pages it)."""
    enrolled = (
        Enrollment.objects.filter(campaign=OuterRef("pk"))
        .order_by()
        .values("campaign")
        .annotate(n=Count("pk"))
        .values("n")
    )
    sent = (
        Message.objects.filter(
            campaign=OuterRef("pk"),
            is_test=False,
            status__in=SENT_STATES,
        )
        .order_by()
        .values("campaign")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Campaign.objects.filter(organization=organization)
        .select_related("created_by")
        .annotate(
            enrolled_count=Coalesce(Subquery(enrolled, output_field=IntegerField()), 0),
            sent_count=Coalesce(Subquery(sent, output_field=IntegerField()), 0),
            topic_name=_topic_name(),
        )
        .order_by("-created_at", "-id")
    )


def _rate(part: int, whole: int) -> float | None:
    return round(part * 100 / whole, 1) if whole else None


# Why an open or click was taken for a machine's (services.tracking.machine_reason), as the
# campaign page says it.
MACHINE_REASONS = {
    "no_user_agent": "no browser or mail app named itself",
    "google_image_proxy": "Gmail's image proxy",
    "apple_privacy_proxy": "Apple Mail Privacy Protection",
    "proxy_user_agent": "a mail provider's image proxy",
    "scanner_user_agent": "security scanner",
    "seconds_after_send": "security scanner: fetched within seconds of delivery",
    "trap_link": "link scanner: followed a link no person can see",
    "trap_link_scanner": "link scanner: clicked together with a link no person can see",
    "many_links_at_once": "link scanner: clicked several links at once",
    # Written by older versions of the demo data.
    "scanner: within seconds of delivery": "security scanner: fetched within seconds of delivery",
}


def campaign_machine_engagement(*, campaign: Campaign) -> dict:
    """Opens and clicks by machines (privacy proxies, scanners, the trap link), which the step
    statistics leave out: counts per kind, and per reason as (words, count). One query."""
    from analytics.models import EngagementEvent

    rows = (
        EngagementEvent.objects.filter(
            organization_id=campaign.organization_id,
            campaign=campaign,
            kind__in=[EngagementEvent.Kind.OPENED, EngagementEvent.Kind.CLICKED],
            is_machine=True,
        )
        .values("kind", "machine_reason")
        .annotate(count=Count("pk"))
        .order_by("machine_reason", "kind")
    )
    result: dict = {"opened": 0, "clicked": 0, "reasons": []}
    by_reason: dict[str, int] = {}
    for row in rows:
        result[row["kind"]] += row["count"]
        by_reason[row["machine_reason"]] = by_reason.get(row["machine_reason"], 0) + row["count"]
    result["reasons"] = sorted(
        (MACHINE_REASONS.get(reason, reason or "other signs"), count)
        for reason, count in by_reason.items()
    )
    return result


def campaign_step_stats(*, campaign: Campaign) -> list[dict]:
    """Per step: queued, sent (bounced ones included), delivered, opened, clicked,
    unsubscribed, bounced, failed, not sent (guard rails) and rates over what was sent. One
    query for all steps."""
    rows = (
        Message.objects.filter(organization_id=campaign.organization_id, campaign=campaign)
        .exclude(is_test=True)
        .values("step_id")
        .annotate(
            total=Count("pk"),
            pending=Count(
                "pk", filter=Q(status__in=[Message.Status.QUEUED, Message.Status.SENDING])
            ),
            sent=Count("pk", filter=Q(status__in=SENT_STATES)),
            delivered=Count("pk", filter=Q(status=Message.Status.DELIVERED)),
            opened=Count("pk", filter=Q(opened_at__isnull=False)),
            clicked=Count("pk", filter=Q(clicked_at__isnull=False)),
            unsubscribed=Count("pk", filter=Q(unsubscribed_at__isnull=False)),
            bounced=Count("pk", filter=Q(status=Message.Status.BOUNCED)),
            failed=Count("pk", filter=Q(status=Message.Status.FAILED)),
            skipped=Count("pk", filter=Q(status=Message.Status.SKIPPED)),
        )
    )
    by_step = {row["step_id"]: row for row in rows}
    stats = []
    for step in campaign.steps.order_by("position"):
        row = by_step.get(step.pk, {})
        counts = {
            key: row.get(key, 0)
            for key in [
                "total",
                "pending",
                "sent",
                "delivered",
                "opened",
                "clicked",
                "unsubscribed",
                "bounced",
                "failed",
                "skipped",
            ]
        }
        sent = counts["sent"]
        counts.update(
            step=step,
            open_rate=_rate(counts["opened"], sent),
            click_rate=_rate(counts["clicked"], sent),
            unsubscribe_rate=_rate(counts["unsubscribed"], sent),
            bounce_rate=_rate(counts["bounced"], sent),
        )
        stats.append(counts)
    return stats


def campaign_waiting(*, campaign: Campaign, now=None) -> list[dict]:
    """Emails of the campaign held back for later — a cap, the domain's warm-up, a retry, the
    provider's throttling, a server that could not be reached — grouped by why, with how many
    and when the first of them goes out (`due`: its time has come and it is about to be tried
    again, within the dispatcher's next minute). One query."""
    from django.db.models import Min
    from django.utils import timezone

    now = now or timezone.now()
    rows = (
        Message.objects.filter(
            Q(next_attempt_at__gt=now) | (Q(next_attempt_at__isnull=False) & ~Q(last_error="")),
            organization_id=campaign.organization_id,
            campaign=campaign,
            status=Message.Status.QUEUED,
            is_test=False,
        )
        .values("last_error")
        .annotate(count=Count("pk"), first=Min("next_attempt_at"))
        .order_by("first")
    )
    return [
        {
            "reason": (row["last_error"] or "Waiting").removeprefix("Waiting: ")[:200],
            "count": row["count"],
            "first": row["first"],
            "due": row["first"] <= now,
        }
        for row in rows
    ]


def broadcast_delivery(*, progress: dict, stats: list[dict]) -> dict:
    """A broadcast's progress in emails rather than enrollments (an enrollment is done once
    its email is written, which can be a day before a capped email goes out): sent, waiting
    (to be written, or in the outbox) and not sent, and the share of recipients settled."""
    sent = sum(row["sent"] for row in stats)
    in_outbox = sum(row["pending"] for row in stats)
    not_sent = sum(row["skipped"] + row["failed"] for row in stats)
    waiting = progress["active"] + in_outbox
    total = progress["total"]
    return {
        "total": total,
        "sent": sent,
        "waiting": waiting,
        "in_outbox": in_outbox,
        "not_sent": not_sent,
        "percent": int((total - waiting) * 100 / total) if total else 0,
    }


def campaign_progress(*, campaign: Campaign) -> dict:
    rows = (
        Enrollment.objects.filter(organization_id=campaign.organization_id, campaign=campaign)
        .values("status")
        .annotate(n=Count("pk"))
    )
    counts = {row["status"]: row["n"] for row in rows}
    total = sum(counts.values())
    finished = counts.get("done", 0) + counts.get("stopped", 0)
    return {
        "total": total,
        "active": counts.get("active", 0),
        "done": counts.get("done", 0),
        "stopped": counts.get("stopped", 0),
        "percent": int(finished * 100 / total) if total else 0,
    }


def campaign_messages(*, campaign: Campaign, status: str = ""):
    messages = (
        Message.objects.filter(organization_id=campaign.organization_id, campaign=campaign)
        .select_related("candidate")
        .defer("html", "text")
        .order_by("-created_at", "-id")
    )
    if status:
        messages = messages.filter(status=status)
    return messages


def email_templates_for_list(*, organization):
    return EmailTemplate.objects.filter(organization=organization).select_related("created_by")


# --- sequences ---

ENROLLMENTS_PAGE_SIZE = 50


def sequence_step_get(*, campaign: Campaign, step_id: int) -> Step:
    return get_object_or_404(
        Step.objects.select_related("campaign"),
        organization_id=campaign.organization_id,
        campaign=campaign,
        pk=step_id,
    )


def campaign_enrollment_get(*, campaign: Campaign, enrollment_id: int) -> Enrollment:
    return get_object_or_404(
        Enrollment.objects.select_related("candidate"),
        organization_id=campaign.organization_id,
        campaign=campaign,
        pk=enrollment_id,
    )


def campaign_enrollments(*, campaign: Campaign, status: str = ""):
    enrollments = (
        Enrollment.objects.filter(organization_id=campaign.organization_id, campaign=campaign)
        .select_related("candidate", "current_step")
        # A finished enrollment whose last email still waits in the outbox can be removed.
        .annotate(
            in_outbox=Exists(
                Message.objects.filter(
                    organization_id=OuterRef("organization_id"),
                    enrollment_id=OuterRef("pk"),
                    status__in=[Message.Status.QUEUED, Message.Status.SENDING],
                )
            )
        )
        .order_by("-enrolled_at", "-id")
    )
    if status:
        enrollments = enrollments.filter(status=status)
    return enrollments


def campaign_step_results(*, campaign: Campaign) -> list[dict]:
    """The per-step results of a campaign page (broadcast or sequence): campaign_step_stats
    plus, per step, replies (human replies to that step's emails, counted from engagement
    events; auto-replies are not), the reply and delivery rates, and how many candidates wait
    at the step. Three queries whatever the number of steps."""
    from analytics.models import EngagementEvent

    stats = campaign_step_stats(campaign=campaign)
    replies = dict(
        EngagementEvent.objects.filter(
            organization_id=campaign.organization_id,
            campaign=campaign,
            kind=EngagementEvent.Kind.REPLIED,
            is_machine=False,
            message__isnull=False,
        )
        .values("message__step_id")
        .annotate(n=Count("message_id", distinct=True))
        .values_list("message__step_id", "n")
    )
    waiting = dict(
        Enrollment.objects.filter(
            organization_id=campaign.organization_id,
            campaign=campaign,
            status=Enrollment.Status.ACTIVE,
        )
        .values("current_step_id")
        .annotate(n=Count("pk"))
        .values_list("current_step_id", "n")
    )
    for row in stats:
        sent = row["sent"]
        row["replied"] = replies.get(row["step"].pk, 0)
        row["reply_rate"] = _rate(row["replied"], sent)
        row["delivery_rate"] = _rate(row["delivered"], sent)
        row["waiting"] = waiting.get(row["step"].pk, 0)
    return stats


# The results chart's bars, in funnel order: (key of a campaign_step_results row, label).
RESULTS_CHART_MEASURES = [
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("opened", "Opened"),
    ("clicked", "Clicked"),
    ("replied", "Replied"),
    ("unsubscribed", "Unsubscribed"),
    ("bounced", "Bounced"),
]


def campaign_results_chart(*, results: list[dict]) -> dict | None:
    """The campaign page's results chart (Chart.js data, through json_script): one bar per
    measure and email step, from the rows of campaign_step_results (the table beside it
    shows the same numbers). None while no email step has sent anything. A sequence's bars
    are named by the step's number in its step list ("Step 3"), which counts task steps too."""
    rows = [row for row in results if row["step"].kind == Step.Kind.EMAIL and row["sent"]]
    if not rows:
        return None
    return {
        "labels": [label for _key, label in RESULTS_CHART_MEASURES],
        "datasets": [
            {
                "label": f"Step {row['step'].position}" if len(results) > 1 else "Emails",
                "data": [row[key] for key, _label in RESULTS_CHART_MEASURES],
            }
            for row in rows
        ],
    }


CANDIDATE_MESSAGES_LIMIT = 20


def candidate_emails_panel(*, candidate, limit: int = CANDIDATE_MESSAGES_LIMIT) -> dict:
    """The candidate's campaign emails, newest first, with their campaign (one query), their
    consent state (one query) and what they chose in the preference centre, with the names
    of the topics they get and of the role families they chose (one query): the "Sent
    emails" card of the profile."""
    from campaigns.models import Consent

    messages = list(
        Message.objects.filter(
            organization_id=candidate.organization_id, candidate=candidate, is_test=False
        )
        .select_related("campaign")
        # The card lists subjects and statuses: not the rendered bodies (kilobytes each), the
        # headers or the links (JSON, decoded per row), nor the campaign's own content.
        .only(
            "id",
            "campaign__name",
            "subject",
            "status",
            "skip_reason",
            "created_at",
            "sent_at",
            "opened_at",
            "clicked_at",
            "replied_at",
        )
        .order_by("-created_at", "-id")[: limit + 1]
    )
    consents = list(
        Consent.objects.filter(organization_id=candidate.organization_id, candidate=candidate)
        .order_by("-created_at")
        .values("granted_at", "requested_at", "withdrawn_at", "source")[:1]
    )
    from campaigns.models import CandidateEmailPreference

    wanted_topics = ArraySubquery(
        Topic.objects.filter(organization=OuterRef("organization"), archived_at__isnull=True)
        .exclude(_KeyIn("opted_out_topics"))
        .order_by("position", "name")
        .values("name")
    )
    preference = (
        CandidateEmailPreference.objects.filter(
            organization_id=candidate.organization_id, candidate=candidate
        )
        .annotate(
            topic_names=wanted_topics,
            role_family_names=_role_family_names("interested_role_families"),
            organization_time_zone=F("organization__time_zone"),
        )
        .first()
    )
    # Paused as the send path sees it: on the organisation's date (is_paused_on).
    paused = preference is not None and preference.is_paused_on(
        timezone.localdate(timezone=ZoneInfo(preference.organization_time_zone or "UTC"))
    )
    return {
        "messages": messages[:limit],
        "has_more": len(messages) > limit,
        "consent": consents[0] if consents else None,
        "preference": preference,
        "paused": paused,
    }
