"""Email templates: validation at save time, saving, previews and "send a test to me"."""

from django.core.exceptions import ValidationError
from django.db import transaction
from jinja2 import TemplateError

from campaigns.models import Campaign, EmailTemplate, Message
from campaigns.services import messages as message_service
from campaigns.services import rendering
from campaigns.services.audience import campaign_pool_names
from candidates.models import CustomField


def custom_field_keys(*, organization) -> list[str]:
    return list(
        CustomField.objects.filter(organization=organization, archived=False).values_list(
            "key", flat=True
        )
    )


def email_problems(
    *, organization, subject: str, preheader: str, body_markdown: str
) -> dict[str, list[rendering.TemplateProblem]]:
    """Problems of each part of an email, by form field name (only parts that have some)."""
    keys = custom_field_keys(organization=organization)
    parts = {"subject": subject, "preheader": preheader, "body_markdown": body_markdown}
    problems = {
        name: rendering.template_problems(
            source,
            custom_keys=keys,
            links_allowed=name == "body_markdown",
            markdown=name == "body_markdown",
        )
        for name, source in parts.items()
    }
    return {name: found for name, found in problems.items() if found}


def _check(*, organization, subject, preheader, body_markdown) -> None:
    problems = email_problems(
        organization=organization, subject=subject, preheader=preheader, body_markdown=body_markdown
    )
    if problems:
        raise ValidationError(
            {name: [str(problem) for problem in found] for name, found in problems.items()}
        )


def email_template_create(
    *, organization, user, name: str, subject: str, preheader: str, body_markdown: str
) -> EmailTemplate:
    _check(
        organization=organization, subject=subject, preheader=preheader, body_markdown=body_markdown
    )
    if EmailTemplate.objects.filter(organization=organization, name__iexact=name).exists():
        raise ValidationError({"name": "A template with this name already exists."})
    return EmailTemplate.objects.create(
        organization=organization,
        name=name,
        subject=subject,
        preheader=preheader,
        body_markdown=body_markdown,
        created_by=user,
    )


def email_template_update(
    *, template: EmailTemplate, name: str, subject: str, preheader: str, body_markdown: str
) -> EmailTemplate:
    _check(
        organization=template.organization,
        subject=subject,
        preheader=preheader,
        body_markdown=body_markdown,
    )
    clash = EmailTemplate.objects.filter(
        organization=template.organization, name__iexact=name
    ).exclude(pk=template.pk)
    if clash.exists():
        raise ValidationError({"name": "A template with this name already exists."})
    template.name, template.subject = name, subject
    template.preheader, template.body_markdown = preheader, body_markdown
    template.save()
    return template


def email_preview(
    *,
    organization,
    user,
    subject: str,
    preheader: str,
    body_markdown: str,
    candidate=None,
    campaign: Campaign | None = None,
) -> tuple[message_service.BuiltMessage | None, list[str]]:
    """The email as a candidate (or, without one, the sample values) would see it; links in
    it lead nowhere. Returns (built message, []) or (None, problems)."""
    problems = email_problems(
        organization=organization, subject=subject, preheader=preheader, body_markdown=body_markdown
    )
    if problems:
        return None, [str(p) for found in problems.values() for p in found]
    sender = message_service.sender_for(organization=organization, campaign=campaign, user=user)
    context = None
    values = {}
    if candidate is not None:
        pool_names = (
            campaign_pool_names(campaigns=[campaign], candidate_ids=[candidate.pk])
            if campaign is not None
            else {}
        )
        values = rendering.candidate_values(
            candidate, pool_name=pool_names.get((getattr(campaign, "pk", 0), candidate.pk), "")
        )
    else:
        context = rendering.sample_context(custom_keys=custom_field_keys(organization=organization))
        context["organization_name"] = organization.name
        context["recruiter"] = sender.recruiter
        links = message_service.candidate_links(
            organization_id=organization.pk, candidate_id=0, message_id=0
        )
        context["unsubscribe_url"] = links["unsubscribe_url"]
        context["preferences_url"] = links["preferences_url"]
    try:
        # Raises a TemplateError for a template saved before validation refused its kind.
        compiled = rendering.email_compile(
            subject=subject, preheader=preheader, body_markdown=body_markdown
        )
        built = message_service.message_build(
            compiled=compiled,
            organization=organization,
            campaign=campaign,
            sender=sender,
            candidate_values=values,
            candidate_id=0,
            message_pk=0,
            track_opens=False,
            track_clicks=False,
            context=context,
        )
    except rendering.RenderLimitExceeded as error:  # says what is wrong in a recruiter's words
        return None, [str(error)]
    except TemplateError as error:
        return None, [f"This template cannot be rendered: {error}"]
    return built, []


def email_send_test(
    *,
    organization,
    user,
    subject: str,
    preheader: str,
    body_markdown: str,
    candidate=None,
    campaign: Campaign | None = None,
    step=None,
) -> Message:
    """Queue the preview as a real email to the user (through the outbox, marked as a test;
    it shows in the campaign's "Sent emails" with a Test badge), with the headers candidates'
    emails carry — a template's too — and sample unsubscribe links. `step`: the sequence step
    tested (default: the campaign's first)."""
    built, problems = email_preview(
        organization=organization,
        user=user,
        subject=subject,
        preheader=preheader,
        body_markdown=body_markdown,
        candidate=candidate,
        campaign=campaign,
    )
    if built is None:
        raise ValidationError(problems)
    sender = message_service.sender_for(organization=organization, campaign=campaign, user=user)
    with transaction.atomic():
        message = Message.objects.create(
            organization=organization,
            campaign=campaign,
            step=step or (campaign.steps.order_by("position").first() if campaign else None),
            is_test=True,
            to_email=user.email,
            from_email=sender.from_email,
            reply_to=sender.reply_to,
            subject=f"[Test] {built.subject}"[:998],
            html=built.html,
            text=built.text,
            headers=built.headers,
            message_id=built.message_id,
        )
        # Robust: with the broker down the test waits in the outbox, where the dispatcher's
        # sweep queues it again (a queued email whose task never came).
        transaction.on_commit(
            lambda: messages_enqueue(organization_id=organization.pk, message_ids=[message.pk]),
            robust=True,
        )
    return message


def messages_enqueue(*, organization_id: int, message_ids: list[int]) -> None:
    from campaigns.services.dispatch import messages_enqueue as enqueue

    enqueue(organization_id=organization_id, message_ids=message_ids)
