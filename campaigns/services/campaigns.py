"""Campaign life cycle: create a broadcast, check it can launch, launch it."""

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
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
    candidate_ids = list(audience_queryset(campaign=campaign).values_list("pk", flat=True))
    Enrollment.objects.bulk_create(
        [
            Enrollment(
                organization_id=campaign.organization_id,
                campaign=campaign,
                candidate_id=candidate_id,
                current_step=first,
                next_run_at=start + first.delay,
            )
            for candidate_id in candidate_ids
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )
    campaign.status = Campaign.Status.SCHEDULED if start > now else Campaign.Status.RUNNING
    campaign.launched_at = now
    campaign.save(update_fields=["status", "launched_at"])
    if start <= now:
        organization_id = campaign.organization_id
        transaction.on_commit(lambda: _dispatch_now(organization_id))
    return len(candidate_ids)


def _dispatch_now(organization_id: int) -> None:
    from campaigns.conf import send_queue
    from campaigns.tasks import dispatch_task

    dispatch_task.apply_async(kwargs={"organization_id": organization_id}, queue=send_queue())
