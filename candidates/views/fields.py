"""Settings → Custom fields: admins define the extra fields every candidate profile has."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from candidates.forms import CustomFieldForm
from candidates.models import CustomField
from candidates.selectors import custom_field_get
from candidates.services import custom_fields
from crm.permissions import admin_required


@admin_required
def field_list(request, org_slug):
    fields = CustomField.objects.filter(organization=request.organization).order_by(
        "archived", "position", "label"
    )
    return render(request, "candidates/custom_field_list.html", {"fields": fields})


@admin_required
def field_add(request, org_slug):
    form = CustomFieldForm(request.POST or None, organization=request.organization)
    if request.method == "POST" and form.is_valid():
        try:
            field = custom_fields.custom_field_create(
                organization=request.organization, **form.cleaned_data
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"“{field.label}” was added to every candidate profile.")
            return redirect("candidates:fields", org_slug=org_slug)
    return render(request, "candidates/custom_field_form.html", {"form": form, "field": None})


@admin_required
def field_edit(request, org_slug, field_id):
    field = custom_field_get(organization=request.organization, field_id=field_id)
    form = CustomFieldForm(request.POST or None, organization=request.organization, field=field)
    if request.method == "POST" and form.is_valid():
        try:
            custom_fields.custom_field_update(
                field=field,
                label=form.cleaned_data["label"],
                choices=form.cleaned_data.get("choices", ""),
                position=form.cleaned_data["position"],
                min_value=form.cleaned_data.get("min_value"),
                max_value=form.cleaned_data.get("max_value"),
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, f"“{field.label}” was saved.")
            return redirect("candidates:fields", org_slug=org_slug)
    return render(request, "candidates/custom_field_form.html", {"form": form, "field": field})


@require_POST
@admin_required
def field_archive(request, org_slug, field_id):
    field = custom_field_get(organization=request.organization, field_id=field_id)
    archived = request.POST.get("archived", "1") != "0"
    custom_fields.custom_field_set_archived(field=field, archived=archived)
    if archived:
        messages.success(
            request, f"“{field.label}” was archived. Stored values are kept; restore it any time."
        )
    else:
        messages.success(request, f"“{field.label}” is back on candidate profiles.")
    return redirect("candidates:fields", org_slug=org_slug)
