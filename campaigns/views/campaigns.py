"""Campaign pages: list, create a broadcast, the campaign page, launch, edit the email before
launch, previews, test sends and the "Sent emails" outbox view."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from campaigns.forms import BroadcastForm, EmailFieldsForm, MessageFilterForm, PreviewCandidateForm
from campaigns.models import Campaign
from campaigns.selectors import (
    CAMPAIGNS_PAGE_SIZE,
    MESSAGES_PAGE_SIZE,
    broadcast_delivery,
    campaign_first_step,
    campaign_get,
    campaign_machine_engagement,
    campaign_message_get,
    campaign_messages,
    campaign_progress,
    campaign_results_chart,
    campaign_step_results,
    campaign_waiting,
    campaigns_for_list,
)
from campaigns.services import campaigns as campaign_service
from campaigns.services import messages as message_service
from campaigns.services import templates as template_service
from campaigns.services.audience import audience_count, audience_queryset
from campaigns.views.common import (
    email_html_response,
    frame_view,
    merge_fields_context,
    step_preview_response,
    step_send_test,
)
from crm.permissions import recruiter_required
from pipelines.selectors import pools_named_for


@require_safe
def campaign_list(request, org_slug):
    campaigns = campaigns_for_list(organization=request.organization)
    page_obj = Paginator(campaigns, CAMPAIGNS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/campaign_list.html",
        {"page_obj": page_obj, "campaigns": page_obj.object_list},
    )


# The broadcast form's fields that are the campaign's settings (all but the template).
BROADCAST_SETTINGS = (
    "name",
    "topic",
    "saved_searches",
    "excluded_saved_searches",
    "pools",
    "excluded_pools",
    "scheduled_at",
    "interest_role_families",
    "interest_locations",
    "interest_include_unstated",
)


@recruiter_required
def campaign_create(request, org_slug):
    form = BroadcastForm(
        request.POST or None,
        organization=request.organization,
        user=request.user,
        initial={"template": request.GET.get("template")},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        campaign = campaign_service.campaign_create_broadcast(
            organization=request.organization,
            user=request.user,
            template=data["template"],
            **{name: data[name] for name in BROADCAST_SETTINGS},
        )
        messages.success(request, "The campaign is ready as a draft. Check it, then launch it.")
        return redirect("campaigns:detail", org_slug=org_slug, campaign_id=campaign.pk)
    has_templates = form.fields["template"].queryset.exists()
    has_searches = (
        form.fields["saved_searches"].queryset.exists() or form.fields["pools"].queryset.exists()
    )
    return render(
        request,
        "campaigns/campaign_form.html",
        {"form": form, "has_templates": has_templates, "has_searches": has_searches},
    )


@recruiter_required
@require_http_methods(["GET", "POST"])
def broadcast_edit(request, org_slug, campaign_id):
    """A draft broadcast's settings: name, topic, audience, when it goes out."""
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    if campaign.kind != Campaign.Kind.BROADCAST:
        raise Http404("This campaign is not a broadcast.")
    if not campaign.is_editable:
        messages.error(request, "A launched campaign's audience and time cannot change.")
        return redirect("campaigns:detail", org_slug=org_slug, campaign_id=campaign.pk)
    form = BroadcastForm(
        request.POST or None,
        organization=request.organization,
        user=request.user,
        campaign=campaign,
    )
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in BROADCAST_SETTINGS}
        try:
            campaign_service.broadcast_update(campaign=campaign, **data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "The broadcast's settings were saved.")
            return redirect("campaigns:detail", org_slug=org_slug, campaign_id=campaign.pk)
    return render(
        request,
        "campaigns/campaign_form.html",
        {"form": form, "campaign": campaign, "has_templates": True, "has_searches": True},
    )


def _preview_candidates(campaign):
    return audience_queryset(campaign=campaign).order_by("last_name", "first_name", "id")


@require_safe
def campaign_detail(request, org_slug, campaign_id):
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    if campaign.kind == Campaign.Kind.SEQUENCE:
        from campaigns.views.sequences import sequence_detail

        return sequence_detail(request, campaign)
    is_draft = campaign.status == Campaign.Status.DRAFT
    step = campaign_first_step(campaign=campaign)
    preview_form = PreviewCandidateForm(
        request.GET or None, candidates=_preview_candidates(campaign)
    )
    candidate = preview_form.cleaned_data.get("candidate") if preview_form.is_valid() else None
    sample = None
    if step is not None:
        sample, _ = template_service.email_preview(
            organization=request.organization,
            user=request.user,
            subject=step.subject,
            preheader=step.preheader,
            body_markdown=step.body_markdown,
            candidate=candidate,
            campaign=campaign,
        )
    stats = campaign_step_results(campaign=campaign)
    progress = campaign_progress(campaign=campaign)
    context = {
        "preview_subject": sample.subject if sample else (step.subject if step else ""),
        "preview_preheader": sample.preheader if sample else "",
        "campaign": campaign,
        "step": step,
        "audience_count": audience_count(campaign=campaign) if is_draft else None,
        "launch_problems": campaign_service.campaign_launch_problems(
            campaign=campaign, user=request.user
        )
        if is_draft
        else [],
        "stats": stats,
        "results_chart": campaign_results_chart(results=stats),
        "machine": None if is_draft else campaign_machine_engagement(campaign=campaign),
        "progress": progress,
        "delivery": broadcast_delivery(progress=progress, stats=stats),
        "waiting": [] if is_draft else campaign_waiting(campaign=campaign),
        "unverified_domain": campaign_service.campaign_held_by_domain(
            organization=request.organization, campaign=campaign
        ),
        "saved_searches": list(campaign.saved_searches.select_related("owner")),
        "excluded_saved_searches": list(campaign.excluded_saved_searches.select_related("owner")),
        "pools": pools_named_for(pools=campaign.pools.all(), user=request.user),
        "excluded_pools": pools_named_for(pools=campaign.excluded_pools.all(), user=request.user),
        "preview_form": preview_form,
    }
    return render(request, "campaigns/campaign_detail.html", context)


@require_POST
@recruiter_required
def campaign_launch(request, org_slug, campaign_id):
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    try:
        enrolled = campaign_service.campaign_launch(campaign=campaign, user=request.user)
    except ValidationError as error:
        for problem in error.messages:
            messages.error(request, problem)
    else:
        campaign.refresh_from_db()
        if campaign.status == Campaign.Status.SCHEDULED:
            messages.success(request, f"Scheduled: {enrolled} candidates will get it on time.")
        else:
            messages.success(request, f"Launched: sending to {enrolled} candidates now.")
    return redirect("campaigns:detail", org_slug=org_slug, campaign_id=campaign.pk)


@require_http_methods(["GET", "POST"])
def campaign_email_edit(request, org_slug, campaign_id):
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    step = campaign_first_step(campaign=campaign)
    if step is None:
        raise Http404("This campaign has no email.")
    if request.method == "POST":
        return _campaign_email_save(request, campaign, step)
    form = EmailFieldsForm(
        initial={
            "subject": step.subject,
            "preheader": step.preheader,
            "body_markdown": step.body_markdown,
        },
        read_only=not request.membership.can_write,
    )
    return _email_editor(request, campaign, form)


def _email_editor(request, campaign, form):
    return render(
        request,
        "campaigns/campaign_email_form.html",
        {
            "campaign": campaign,
            "form": form,
            **merge_fields_context(organization=request.organization),
            "preview_form": PreviewCandidateForm(candidates=_preview_candidates(campaign)),
        },
    )


@recruiter_required
def _campaign_email_save(request, campaign, step):
    form = EmailFieldsForm(request.POST)
    if form.is_valid():
        problems = template_service.email_problems(
            organization=request.organization, **form.cleaned_data
        )
        for name, found in problems.items():
            form.add_error(name, [str(problem) for problem in found])
        if not problems:
            try:
                campaign_service.step_update(step=step, **form.cleaned_data)
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, "The email was saved.")
                return redirect(
                    "campaigns:detail", org_slug=request.organization.slug, campaign_id=campaign.pk
                )
    return _email_editor(request, campaign, form)


@frame_view
@require_http_methods(["GET", "POST"])
def campaign_preview(request, org_slug, campaign_id):
    """The campaign's email as HTML for a preview frame (saved, or the editor's unsaved text)."""
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    step = campaign_first_step(campaign=campaign)
    if step is None:
        raise Http404("This campaign has no email.")
    return step_preview_response(
        request, campaign=campaign, step=step, candidates=_preview_candidates(campaign)
    )


@require_POST
@recruiter_required
def campaign_test_send(request, org_slug, campaign_id):
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    step = campaign_first_step(campaign=campaign)
    if step is None:
        raise Http404("This campaign has no email.")
    step_send_test(
        request,
        campaign=campaign,
        step=step,
        candidates=_preview_candidates(campaign),
        what="A test email",
    )
    return redirect("campaigns:detail", org_slug=org_slug, campaign_id=campaign.pk)


@require_safe
def campaign_message_list(request, org_slug, campaign_id):
    """ "Sent emails": the campaign's outbox, exactly as candidates get them."""
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    filter_form = MessageFilterForm(request.GET or None)
    status = filter_form.cleaned_data["status"] if filter_form.is_valid() else ""
    page = Paginator(campaign_messages(campaign=campaign, status=status), MESSAGES_PAGE_SIZE)
    page_obj = page.get_page(request.GET.get("page"))
    return render(
        request,
        "campaigns/message_list.html",
        {"campaign": campaign, "page_obj": page_obj, "filter_form": filter_form},
    )


@require_safe
def campaign_message_detail(request, org_slug, campaign_id, message_id):
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    message = campaign_message_get(campaign=campaign, message_id=message_id)
    return render(
        request,
        "campaigns/message_detail.html",
        {
            "campaign": campaign,
            "message": message,
            "shown": message_service.message_for_staff(message),
            "candidate_link": message_service.CANDIDATE_LINK,
        },
    )


@require_safe
@frame_view
def campaign_message_html(request, org_slug, campaign_id, message_id):
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    message = campaign_message_get(campaign=campaign, message_id=message_id)
    return email_html_response(message_service.message_html_for_staff(message.html))
