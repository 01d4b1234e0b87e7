"""Settings → Email: sender, postal address, sending rules and sending domains (warm-up);
Settings → Email topics; Settings → Role families."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from campaigns.forms import (
    BrandingForm,
    EmailSettingsForm,
    RoleFamilyForm,
    SenderForm,
    SendingDomainForm,
    TopicForm,
)
from campaigns.models import RoleFamily, SendingDomain, Topic
from campaigns.selectors import email_settings_for
from campaigns.services import branding as branding_service
from campaigns.services import domains as domain_service
from campaigns.services import email_settings as settings_service
from campaigns.services import role_families as role_family_service
from campaigns.services import topics as topic_service
from campaigns.services.guards import local_day
from crm.permissions import admin_required


def _topic_get(request, topic_id: int) -> Topic:
    return get_object_or_404(Topic, organization=request.organization, pk=topic_id)


def _role_family_get(request, role_family_id: int) -> RoleFamily:
    return get_object_or_404(RoleFamily, organization=request.organization, pk=role_family_id)


@admin_required
@require_http_methods(["GET", "POST"])
def email_settings_edit(request, org_slug):
    organization = request.organization
    current = email_settings_for(organization=organization)
    data = request.POST if request.method == "POST" else None
    sender_form = SenderForm(data, instance=organization, prefix="sender")
    rules_form = EmailSettingsForm(data, instance=current, prefix="rules")
    branding_form = BrandingForm(
        data,
        request.FILES if data is not None else None,
        prefix="brand",
        initial={"brand_color": organization.brand_color},
    )
    forms_valid = all([sender_form.is_valid(), rules_form.is_valid(), branding_form.is_valid()])
    if data is not None and forms_valid:
        try:
            with transaction.atomic():
                settings_service.email_settings_update(
                    organization=organization,
                    sender={n: sender_form.cleaned_data[n] for n in settings_service.SENDER_FIELDS},
                    rules=rules_form.cleaned_data,
                )
                branding_service.organization_branding_update(
                    organization=organization, **branding_form.cleaned_data
                )
        except ValidationError as error:  # the logo could not be read, or the colour
            branding_form.add_error(None if hasattr(error, "error_dict") else "logo", error)
        else:
            messages.success(request, "Email settings saved.")
            return redirect("campaigns:email_settings", org_slug=org_slug)
    organization.refresh_from_db()  # an invalid form must not show unsaved values as saved
    return render(
        request,
        "campaigns/settings/email.html",
        {
            "sender_form": sender_form,
            "rules_form": rules_form,
            "branding_form": branding_form,
            "brand": branding_service.brand_for(organization),
            "problems": settings_service.email_settings_problems(organization=organization),
            "domains": domain_service.sending_domains_status(
                organization=organization, today=local_day(organization, timezone.now())
            ),
        },
    )


@admin_required
@require_http_methods(["GET", "POST"])
def sending_domain_edit(request, org_slug, domain_id):
    """Start, change or stop a sending domain's warm-up; shows the ramp day by day."""
    domain = get_object_or_404(SendingDomain, organization=request.organization, pk=domain_id)
    initial = {
        "warmup": domain.warmup_started_on is not None,
        "warmup_started_on": domain.warmup_started_on
        or local_day(request.organization, timezone.now()),
        "warmup_first_day": domain.warmup_first_day,
        "warmup_growth_percent": domain.warmup_growth_percent,
        "warmup_target_per_day": domain.warmup_target_per_day,
    }
    form = SendingDomainForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            domain_service.sending_domain_update(domain=domain, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            if domain.warmup_started_on:
                messages.success(
                    request, f"{domain.domain} warms up from {domain.warmup_started_on:%-d %b %Y}."
                )
            else:
                messages.success(request, f"{domain.domain} sends without a warm-up limit.")
            return redirect("campaigns:email_settings", org_slug=org_slug)
    return render(
        request,
        "campaigns/settings/sending_domain.html",
        {
            "domain": domain,
            "form": form,
            "schedule": domain_service.warmup_schedule(domain=domain),
            "today": local_day(request.organization, timezone.now()),
        },
    )


@admin_required
@require_http_methods(["GET", "POST"])
def topic_list(request, org_slug):
    form = TopicForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            topic_service.topic_create(organization=request.organization, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Topic added.")
            return redirect("campaigns:topic_list", org_slug=org_slug)
    topics = topic_service.topics_for(organization=request.organization, include_archived=True)
    return render(request, "campaigns/settings/topics.html", {"topics": topics, "form": form})


@admin_required
@require_http_methods(["GET", "POST"])
def topic_edit(request, org_slug, topic_id):
    topic = _topic_get(request, topic_id)
    form = TopicForm(
        request.POST or None, initial={"name": topic.name, "description": topic.description}
    )
    if request.method == "POST" and form.is_valid():
        try:
            topic_service.topic_update(topic=topic, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Topic saved.")
            return redirect("campaigns:topic_list", org_slug=org_slug)
    return render(request, "campaigns/settings/topic_form.html", {"topic": topic, "form": form})


@require_POST
@admin_required
def topic_archive(request, org_slug, topic_id):
    topic = _topic_get(request, topic_id)
    try:
        if request.POST.get("restore"):
            topic_service.topic_restore(topic=topic)
            messages.success(request, f"“{topic.name}” is back.")
        else:
            topic_service.topic_archive(topic=topic)
            messages.success(request, f"“{topic.name}” is archived.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("campaigns:topic_list", org_slug=org_slug)


@admin_required
@require_http_methods(["GET", "POST"])
def role_family_list(request, org_slug):
    form = RoleFamilyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            role_family_service.role_family_create(
                organization=request.organization, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Role family added.")
            return redirect("campaigns:role_family_list", org_slug=org_slug)
    families = role_family_service.role_families_for(
        organization=request.organization, include_archived=True
    )
    return render(
        request, "campaigns/settings/role_families.html", {"families": families, "form": form}
    )


@admin_required
@require_http_methods(["GET", "POST"])
def role_family_edit(request, org_slug, role_family_id):
    family = _role_family_get(request, role_family_id)
    form = RoleFamilyForm(request.POST or None, initial={"name": family.name})
    if request.method == "POST" and form.is_valid():
        try:
            role_family_service.role_family_update(role_family=family, **form.cleaned_data)
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Role family saved.")
            return redirect("campaigns:role_family_list", org_slug=org_slug)
    return render(
        request, "campaigns/settings/role_family_form.html", {"family": family, "form": form}
    )


@require_POST
@admin_required
def role_family_archive(request, org_slug, role_family_id):
    family = _role_family_get(request, role_family_id)
    if request.POST.get("restore"):
        role_family_service.role_family_restore(role_family=family)
        messages.success(request, f"“{family.name}” is back.")
    else:
        role_family_service.role_family_archive(role_family=family)
        messages.success(request, f"“{family.name}” is archived.")
    return redirect("campaigns:role_family_list", org_slug=org_slug)
