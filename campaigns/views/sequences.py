"""Sequence pages: create a sequence and change its settings, add/edit/reorder/delete steps,
the sequence's campaign page (steps with results, enrollments), pause and resume, end it,
remove one candidate."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from campaigns.forms import PreviewCandidateForm
from campaigns.models import Campaign, Enrollment, Step
from campaigns.selectors import (
    ENROLLMENTS_PAGE_SIZE,
    campaign_enrollment_get,
    campaign_enrollments,
    campaign_get,
    campaign_progress,
    campaign_results_chart,
    campaign_step_results,
    campaign_waiting,
    sequence_step_get,
)
from campaigns.sequence_forms import EnrollmentFilterForm, ResumeForm, SequenceForm, StepForm
from campaigns.services import campaigns as campaign_service
from campaigns.services import sequences as sequence_service
from campaigns.services.audience import audience_count, audience_queryset
from campaigns.views.common import (
    frame_view,
    merge_fields_context,
    step_preview_response,
    step_send_test,
)
from candidates.models import Candidate
from crm.permissions import recruiter_required
from pipelines.selectors import pools_named_for


def _sequence_get(request, campaign_id) -> Campaign:
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    if campaign.kind != Campaign.Kind.SEQUENCE:
        raise Http404("This campaign is not a sequence.")
    return campaign


def _to_detail(campaign):
    return redirect(
        "campaigns:detail", org_slug=campaign.organization.slug, campaign_id=campaign.pk
    )


def sequence_detail(request, campaign):
    """The campaign page of a sequence (campaign_detail hands sequences over to this)."""
    is_draft = campaign.is_editable
    filter_form = EnrollmentFilterForm(request.GET or None)
    status = filter_form.cleaned_data["status"] if filter_form.is_valid() else ""
    page = Paginator(campaign_enrollments(campaign=campaign, status=status), ENROLLMENTS_PAGE_SIZE)
    results = campaign_step_results(campaign=campaign)
    context = {
        "campaign": campaign,
        "steps": [
            {**row, "wait": sequence_service.delay_text(row["step"].delay)} for row in results
        ],
        "results_chart": campaign_results_chart(results=results),
        "progress": campaign_progress(campaign=campaign),
        "waiting": [] if is_draft else campaign_waiting(campaign=campaign),
        "unverified_domain": campaign_service.campaign_held_by_domain(
            organization=request.organization, campaign=campaign
        ),
        "window": sequence_service.window_summary(campaign=campaign),
        "audience_count": audience_count(campaign=campaign) if is_draft else None,
        "launch_problems": campaign_service.campaign_launch_problems(
            campaign=campaign, user=request.user
        )
        if is_draft
        else [],
        "saved_searches": list(campaign.saved_searches.select_related("owner")),
        "excluded_saved_searches": list(campaign.excluded_saved_searches.select_related("owner")),
        "pools": pools_named_for(pools=campaign.pools.all(), user=request.user),
        "auto_join_pool": (
            pools_named_for(pools=[campaign.auto_join_pool], user=request.user)[0]
            if campaign.auto_join_pool_id
            else None
        ),
        "page_obj": page.get_page(request.GET.get("page")),
        "filter_form": filter_form,
    }
    return render(request, "campaigns/sequence_detail.html", context)


@recruiter_required
@require_http_methods(["GET", "POST"])
def sequence_create(request, org_slug):
    form = SequenceForm(request.POST or None, organization=request.organization, user=request.user)
    if request.method == "POST" and form.is_valid():
        campaign = sequence_service.sequence_create(
            organization=request.organization, user=request.user, **form.cleaned_data
        )
        messages.success(request, "The sequence is a draft: add its steps, then launch it.")
        return redirect("campaigns:step_create", org_slug=org_slug, campaign_id=campaign.pk)
    return render(request, "campaigns/sequence_form.html", {"form": form, "campaign": None})


@recruiter_required
@require_http_methods(["GET", "POST"])
def sequence_edit(request, org_slug, campaign_id):
    campaign = _sequence_get(request, campaign_id)
    form = SequenceForm(
        request.POST or None,
        organization=request.organization,
        user=request.user,
        campaign=campaign,
    )
    if request.method == "POST" and form.is_valid():
        try:
            sequence_service.sequence_update(campaign=campaign, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "The sequence's settings were saved.")
            return _to_detail(campaign)
    return render(request, "campaigns/sequence_form.html", {"form": form, "campaign": campaign})


def _step_preview_candidates(campaign):
    """Whom a step's preview can be shown as: the candidates in the sequence, those a launch
    would enroll, and the members of its auto-join pool."""
    from pipelines.models import PoolMembership

    sources = Q(pk__in=audience_queryset(campaign=campaign).values("pk")) | Q(
        pk__in=Enrollment.objects.filter(campaign=campaign).values("candidate_id")
    )
    if campaign.auto_join_pool_id:
        sources |= Q(
            pk__in=PoolMembership.objects.filter(pool_id=campaign.auto_join_pool_id).values(
                "candidate_id"
            )
        )
    return (
        Candidate.objects.live()
        .filter(sources, organization_id=campaign.organization_id)
        .order_by("last_name", "first_name", "id")
    )


def _step_page(request, campaign, form, step=None):
    if not campaign.is_editable:
        # A launched sequence's step page only shows the step (step_save refuses changes):
        # its email can be previewed as a candidate and sent as a test, not rewritten.
        for field in form.fields.values():
            field.disabled = True
    return render(
        request,
        "campaigns/sequence_step_form.html",
        {
            "campaign": campaign,
            "step": step,
            "form": form,
            **merge_fields_context(organization=request.organization),
            "preview_form": PreviewCandidateForm(
                request.GET or None, candidates=_step_preview_candidates(campaign)
            )
            if step is not None and step.kind == Step.Kind.EMAIL
            else None,
        },
    )


@recruiter_required
@require_http_methods(["GET", "POST"])
def step_create(request, org_slug, campaign_id):
    campaign = _sequence_get(request, campaign_id)
    form = StepForm(
        request.POST or None,
        organization=request.organization,
        first_step=not campaign.steps.exists(),
    )
    if request.method == "POST" and form.is_valid():
        try:
            sequence_service.step_create(campaign=campaign, **form.step_fields())
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "The step was added.")
            return _to_detail(campaign)
    return _step_page(request, campaign, form)


@recruiter_required
@require_http_methods(["GET", "POST"])
def step_edit(request, org_slug, campaign_id, step_id):
    campaign = _sequence_get(request, campaign_id)
    step = sequence_step_get(campaign=campaign, step_id=step_id)
    form = StepForm(
        request.POST or None,
        organization=request.organization,
        first_step=not campaign.steps.filter(position__lt=step.position).exists(),
        step=step,
    )
    if request.method == "POST" and form.is_valid():
        try:
            sequence_service.step_save(step=step, **form.step_fields())
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"Step {step.position} was saved.")
            return _to_detail(campaign)
    return _step_page(request, campaign, form, step)


@frame_view
@require_http_methods(["GET", "POST"])
def step_preview(request, org_slug, campaign_id, step_id):
    """An email step as HTML for the preview frame on its edit page: the saved version (GET)
    or the editor's unsaved text (POST), with sample values or a real candidate."""
    campaign = _sequence_get(request, campaign_id)
    step = sequence_step_get(campaign=campaign, step_id=step_id)
    if step.kind != Step.Kind.EMAIL:
        raise Http404("A task step has no email.")
    return step_preview_response(
        request, campaign=campaign, step=step, candidates=_step_preview_candidates(campaign)
    )


@require_POST
@recruiter_required
def step_test_send(request, org_slug, campaign_id, step_id):
    """ "Send a test to me": the step's saved email, as a chosen candidate (or the samples)
    would get it, to the recruiter's own address through the outbox."""
    campaign = _sequence_get(request, campaign_id)
    step = sequence_step_get(campaign=campaign, step_id=step_id)
    if step.kind != Step.Kind.EMAIL:
        raise Http404("A task step has no email.")
    step_send_test(
        request,
        campaign=campaign,
        step=step,
        candidates=_step_preview_candidates(campaign),
        what=f"A test of step {step.position}",
    )
    return redirect(
        "campaigns:step_edit", org_slug=org_slug, campaign_id=campaign.pk, step_id=step.pk
    )


@require_POST
@recruiter_required
def step_delete(request, org_slug, campaign_id, step_id):
    campaign = _sequence_get(request, campaign_id)
    step = sequence_step_get(campaign=campaign, step_id=step_id)
    try:
        sequence_service.step_delete(step=step)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Step {step.position} was deleted.")
    return _to_detail(campaign)


@require_POST
@recruiter_required
def step_move(request, org_slug, campaign_id, step_id):
    campaign = _sequence_get(request, campaign_id)
    step = sequence_step_get(campaign=campaign, step_id=step_id)
    direction = request.POST.get("direction")
    if direction not in ("up", "down"):
        messages.error(request, "Choose whether to move the step up or down.")
        return _to_detail(campaign)
    try:
        sequence_service.step_move(step=step, direction=direction)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return _to_detail(campaign)


@require_POST
@recruiter_required
def campaign_pause(request, org_slug, campaign_id):
    """Pause a sequence or a broadcast (scheduled, or still sending)."""
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    try:
        sequence_service.campaign_pause(campaign=campaign, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        what = "step" if campaign.kind == Campaign.Kind.SEQUENCE else "email"
        messages.success(request, f"Paused: no {what} goes out until you resume it.")
    return _to_detail(campaign)


@recruiter_required
@require_http_methods(["GET", "POST"])
def campaign_resume(request, org_slug, campaign_id):
    """Resuming a sequence asks what happens to the steps that fell due during the pause; a
    broadcast's one email simply goes out (at its scheduled time if that is still to come)."""
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    if campaign.status != Campaign.Status.PAUSED:
        messages.error(request, "Only a paused campaign can be resumed.")
        return _to_detail(campaign)
    is_sequence = campaign.kind == Campaign.Kind.SEQUENCE
    form = ResumeForm(request.POST or None) if is_sequence else None
    if request.method == "POST" and (form is None or form.is_valid()):
        try:
            sequence_service.campaign_resume(
                campaign=campaign,
                user=request.user,
                overdue=form.cleaned_data["overdue"] if form else sequence_service.Overdue.SEND_NOW,
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "Resumed.")
        return _to_detail(campaign)
    overdue = sequence_service.campaign_overdue_count(campaign=campaign)
    return render(
        request,
        "campaigns/sequence_resume.html",
        {"campaign": campaign, "form": form, "overdue_count": overdue, "now": timezone.now()},
    )


@require_POST
@recruiter_required
def sequence_end(request, org_slug, campaign_id):
    """End a launched sequence for good: everyone leaves it, its queued emails are not sent,
    nobody joins it any more."""
    campaign = _sequence_get(request, campaign_id)
    try:
        left = campaign_service.sequence_end(campaign=campaign, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            f"The sequence has ended: {left} candidate{'s' if left != 1 else ''} left it, "
            "and nobody joins it any more.",
        )
    return _to_detail(campaign)


@require_POST
@recruiter_required
def enrollment_remove(request, org_slug, campaign_id, enrollment_id):
    campaign = campaign_get(organization=request.organization, campaign_id=campaign_id)
    enrollment = campaign_enrollment_get(campaign=campaign, enrollment_id=enrollment_id)
    if sequence_service.enrollment_remove(enrollment=enrollment, actor=request.user):
        messages.success(request, f"{enrollment.candidate} was removed from this campaign.")
    else:
        messages.info(request, f"{enrollment.candidate} had already left this campaign.")
    return _to_detail(campaign)
