"""Settings → Email: sender, postal address, sending rules and sending domains (verification,
warm-up);
Settings → Email topics; Settings → Role families."""

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
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
from campaigns.models import OrganizationChoice, SendingDomain
from campaigns.selectors import email_settings_for
from campaigns.services import branding as branding_service
from campaigns.services import choice_lists as choice_service
from campaigns.services import domains as domain_service
from campaigns.services import email_settings as settings_service
from campaigns.services import role_families as role_family_service
from campaigns.services import topics as topic_service
from campaigns.services.choice_lists import ChoiceList
from campaigns.services.guards import local_day
from crm.permissions import admin_required


@dataclass(frozen=True, kw_only=True)
class _ChoicePage:
    """What tells Settings → Email topics from Settings → Role families: both pages share their
    views and templates (settings/choice_list.html, settings/choice_form.html)."""

    choice_list: ChoiceList
    form_class: type[TopicForm] | type[RoleFamilyForm]
    url_prefix: str  # "topic": the URL names campaigns:topic_list, topic_edit, topic_archive
    tab: str  # the settings tab shown active
    title: str
    intro: str  # above the list
    rename_intro: str  # above the rename form
    empty_text: str = ""  # shown when the list has no entry at all

    @property
    def noun(self) -> str:
        return self.choice_list.noun

    @property
    def list_url(self) -> str:
        return f"campaigns:{self.url_prefix}_list"

    @property
    def edit_url(self) -> str:
        return f"campaigns:{self.url_prefix}_edit"

    @property
    def archive_url(self) -> str:
        return f"campaigns:{self.url_prefix}_archive"


_TOPICS = _ChoicePage(
    choice_list=topic_service.TOPICS,
    form_class=TopicForm,
    url_prefix="topic",
    tab="topics",
    title="Email topics",
    intro=(
        "Each campaign is about one topic; candidates choose the topics they want in their "
        "preference centre. Archived topics are hidden from new campaigns (a draft on one "
        "cannot launch) and from candidates, except those a running sequence still emails "
        "about one; their opt-outs stay in force."
    ),
    rename_intro="Campaigns and candidates' choices keep pointing at this topic.",
)
_ROLE_FAMILIES = _ChoicePage(
    choice_list=role_family_service.ROLE_FAMILIES,
    form_class=RoleFamilyForm,
    url_prefix="role_family",
    tab="role_families",
    title="Role families",
    intro=(
        "Candidates tick in their preference centre the kinds of role they are interested in; "
        "campaigns can go only to those interested in some of them. Archived families are "
        "hidden from candidates and new campaigns; the choices already made stay."
    ),
    rename_intro="Candidates' choices and campaigns keep pointing at this role family.",
    empty_text="No role families yet: add the first one.",
)


def _choice_get(request, page: _ChoicePage, entry_id: int) -> OrganizationChoice:
    return get_object_or_404(page.choice_list.model, organization=request.organization, pk=entry_id)


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
            "verification_required": domain_service.verification_required(),
        },
    )


@require_POST
@admin_required
def sending_domain_verify(request, org_slug, domain_id):
    """The domain's Check now button: look up its DNS TXT record and say what was found."""
    domain = get_object_or_404(SendingDomain, organization=request.organization, pk=domain_id)
    if domain.verified_at is not None:
        messages.info(request, f"{domain.domain} is verified.")
    elif domain_service.sending_domain_check_throttled(domain=domain):
        messages.info(
            request, f"{domain.domain} was checked a moment ago: wait a few seconds, then retry."
        )
    else:
        domain_service.sending_domain_check(domain=domain)
        if domain.verified_at is not None:
            messages.success(
                request, f"{domain.domain} is verified: campaign email can leave from it."
            )
        else:
            messages.error(request, domain.verification_error)
    return redirect(reverse("campaigns:email_settings", args=[org_slug]) + "#sending-domains")


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


def _choice_list(request, *, page: _ChoicePage):
    form = page.form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            choice_service.choice_create(
                choice_list=page.choice_list,
                organization=request.organization,
                **form.cleaned_data,
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"{page.noun.capitalize()} added.")
            return redirect(page.list_url, org_slug=request.organization.slug)
    entries = choice_service.choices_for(
        choice_list=page.choice_list, organization=request.organization, include_archived=True
    )
    return render(
        request,
        "campaigns/settings/choice_list.html",
        {"page": page, "entries": entries, "form": form},
    )


def _choice_edit(request, *, page: _ChoicePage, entry_id: int):
    entry = _choice_get(request, page, entry_id)
    form = page.form_class(
        request.POST or None,
        # The form's fields are what may change: the name, and a topic's description.
        initial={name: getattr(entry, name) for name in page.form_class.base_fields},
    )
    if request.method == "POST" and form.is_valid():
        try:
            choice_service.choice_update(
                choice_list=page.choice_list, entry=entry, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"{page.noun.capitalize()} saved.")
            return redirect(page.list_url, org_slug=request.organization.slug)
    return render(
        request,
        "campaigns/settings/choice_form.html",
        {"page": page, "entry": entry, "form": form},
    )


def _choice_archive(request, *, page: _ChoicePage, entry_id: int):
    entry = _choice_get(request, page, entry_id)
    try:
        if request.POST.get("restore"):
            choice_service.choice_restore(entry=entry)
            messages.success(request, f"“{entry.name}” is back.")
        else:
            choice_service.choice_archive(choice_list=page.choice_list, entry=entry)
            messages.success(request, f"“{entry.name}” is archived.")
    except ValidationError as error:  # the last topic: campaigns need one
        messages.error(request, " ".join(error.messages))
    return redirect(page.list_url, org_slug=request.organization.slug)


@admin_required
@require_http_methods(["GET", "POST"])
def topic_list(request, org_slug):
    return _choice_list(request, page=_TOPICS)


@admin_required
@require_http_methods(["GET", "POST"])
def topic_edit(request, org_slug, topic_id):
    return _choice_edit(request, page=_TOPICS, entry_id=topic_id)


@require_POST
@admin_required
def topic_archive(request, org_slug, topic_id):
    return _choice_archive(request, page=_TOPICS, entry_id=topic_id)


@admin_required
@require_http_methods(["GET", "POST"])
def role_family_list(request, org_slug):
    return _choice_list(request, page=_ROLE_FAMILIES)


@admin_required
@require_http_methods(["GET", "POST"])
def role_family_edit(request, org_slug, role_family_id):
    return _choice_edit(request, page=_ROLE_FAMILIES, entry_id=role_family_id)


@require_POST
@admin_required
def role_family_archive(request, org_slug, role_family_id):
    return _choice_archive(request, page=_ROLE_FAMILIES, entry_id=role_family_id)
