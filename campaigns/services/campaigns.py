"""Campaign life cycle: create a broadcast, check it can launch, launch it."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, EmailTemplate, Enrollment, Step
from campaigns.services.audience import audience_queryset
from campaigns.services.templates import email_problems


@transaction.atomic
def campaign_create_broadcast(
    *,
    organization,
    user,
    name: str,
    topic: str,
    template: EmailTemplate,
    saved_searches,
    excluded_saved_searches=(),
    pools=(),
    excluded_pools=(),
    scheduled_at: datetime | None = None,
) -> Campaign:
    """A draft broadcast whose one email step is a copy of `template` (editing the template
    later does not change a campaign that was already written)."""
    campaign = Campaign.objects.create(
        organization=organization,
        name=name,
        kind=Campaign.Kind.BROADCAST,
        topic=topic,
        template=template,
        sender=user,
        scheduled_at=scheduled_at,
        created_by=user,
    )
    campaign.saved_searches.set(saved_searches)
    campaign.excluded_saved_searches.set(excluded_saved_searches)
    campaign.pools.set(pools)
    campaign.excluded_pools.set(excluded_pools)
    Step.objects.create(
        organization=organization,
        campaign=campaign,
        position=1,
        kind=Step.Kind.EMAIL,
        subject=template.subject,
        preheader=template.preheader,
        body_markdown=template.body_markdown,
    )
    return campaign


def step_update(*, step: Step, subject: str, preheader: str, body_markdown: str) -> Step:
    if not step.campaign.is_editable:
        raise ValidationError("Only a draft campaign's emails can be changed.")
    step.subject, step.preheader, step.body_markdown = subject, preheader, body_markdown
    step.save(update_fields=["subject", "preheader", "body_markdown"])
    return step


def campaign_launch_problems(*, campaign: Campaign) -> list[str]:
    """Why this campaign cannot launch now (empty: it can)."""
    organization = campaign.organization
    problems = []
    if campaign.status != Campaign.Status.DRAFT:
        problems.append("Only a draft campaign can be launched.")
    if not organization.postal_address.strip():
        problems.append(
            "Your organisation has no postal address. The law requires it in every campaign "
            "email: an admin can add it in Settings."
        )
    if not organization.sender_email:
        problems.append("Your organisation has no sender address: an admin can add it in Settings.")
    email_steps = [s for s in campaign.steps.all() if s.kind == Step.Kind.EMAIL]
    if not email_steps:
        problems.append("The campaign has no email to send.")
    for step in email_steps:
        for problem in email_problems(
            organization=organization,
            subject=step.subject,
            preheader=step.preheader,
            body_markdown=step.body_markdown,
        ).values():
            problems.extend(str(p) for p in problem)
    if campaign.kind == Campaign.Kind.SEQUENCE:
        joins_at_launch = campaign.saved_searches.exists() or campaign.pools.exists()
        if not joins_at_launch and campaign.auto_join_pool_id is None:
            problems.append(
                "Choose who joins: a saved search or talent pool, or a pool candidates join from."
            )
    elif not campaign.saved_searches.exists() and not campaign.pools.exists():
        problems.append("Choose who receives it: at least one saved search or talent pool.")
    return problems


@transaction.atomic
def campaign_launch(*, campaign: Campaign, user, now: datetime | None = None) -> int:
    """Enroll the audience and start sending (at once, or at `scheduled_at`). Returns how many
    candidates were enrolled. Raises ValidationError with the reasons when it cannot launch."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    problems = campaign_launch_problems(campaign=campaign)
    if problems:
        raise ValidationError(problems)
    now = now or timezone.now()
    start = max(now, campaign.scheduled_at) if campaign.scheduled_at else now
    first = campaign.steps.order_by("position").first()
    enrolled = _enroll_audience(campaign=campaign, first=first, run_at=start + first.delay, now=now)
    campaign.status = Campaign.Status.SCHEDULED if start > now else Campaign.Status.RUNNING
    campaign.launched_at = now
    campaign.save(update_fields=["status", "launched_at"])
    if start <= now:
        organization_id = campaign.organization_id
        transaction.on_commit(lambda: _dispatch_now(organization_id))
    return enrolled


def _enroll_audience(*, campaign: Campaign, first: Step, run_at: datetime, now: datetime) -> int:
    """Enroll the whole audience with one INSERT … SELECT over the audience query: a 100,000
    candidate broadcast took 17-21 s as model instances and takes a fraction of a second this
    way, so the first email goes out right after launch. Returns how many joined."""
    audience_sql, audience_params = (
        audience_queryset(campaign=campaign).order_by().values("pk").query.sql_with_params()
    )
    table = Enrollment._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (organization_id, campaign_id, candidate_id, current_step_id, "  # noqa: S608 (our table name; the audience SQL is Django's)
            "next_run_at, status, stop_reason, enrolled_at, finished_at) "
            f"SELECT %s, %s, audience.id, %s, %s, %s, '', %s, NULL FROM ({audience_sql}) AS audience(id) "
            "ON CONFLICT DO NOTHING",
            [
                campaign.organization_id,
                campaign.pk,
                first.pk,
                run_at,
                Enrollment.Status.ACTIVE,
                now,
                *audience_params,
            ],
        )
        return cursor.rowcount


def _dispatch_now(organization_id: int) -> None:
    from campaigns.conf import send_queue
    from campaigns.tasks import dispatch_task

    dispatch_task.apply_async(kwargs={"organization_id": organization_id}, queue=send_queue())
