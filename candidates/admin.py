"""Django admin for operators (staff). The admin runs with scopes disabled (see
crm.middleware), so every list shows the organisation column and filters by it."""

from django import forms
from django.contrib import admin
from django.db import models

from candidates.models import (
    Activity,
    Attachment,
    Candidate,
    CustomField,
    DuplicateSuggestion,
    ImportRowError,
    Job,
    MergeRecord,
    Note,
    SavedSearch,
)
from candidates.normalize import normalize_email
from candidates.services.attachments import attachment_delete
from candidates.services.bulk import jobs_delete
from candidates.services.profiles import candidates_delete

# --- profiles, notes, timeline, custom fields ---


class CandidateAdminForm(forms.ModelForm):
    """Addresses stored as every other writer stores them (candidate_email_lower_case), so
    the uniqueness among live profiles is checked on the stored value: a taken address in
    other capitals is a form error, not a database error. (The admin supplies the model and
    the fields.)"""

    def clean_email(self) -> str:
        return normalize_email(self.cleaned_data["email"])

    def clean_alternate_emails(self) -> list[str]:
        emails = (normalize_email(email) for email in self.cleaned_data["alternate_emails"])
        return list(dict.fromkeys(email for email in emails if email))


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    form = CandidateAdminForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}  # as the app's forms
    list_display = ["full_name", "email", "current_company", "status", "organization", "created_at"]
    list_filter = ["organization", "status", "source"]
    search_fields = ["first_name", "last_name", "email", "current_company"]
    raw_id_fields = ["owner", "merged_into"]
    readonly_fields = ["created_at", "updated_at", "search_name"]
    exclude = ["search_vector"]
    list_select_related = ["organization"]

    # Through the service, so that stored files go with the rows.
    def delete_model(self, request, obj) -> None:
        candidates_delete(candidate_ids=[obj.pk])

    def delete_queryset(self, request, queryset) -> None:
        candidates_delete(candidate_ids=list(queryset.values_list("pk", flat=True)))


@admin.register(CustomField)
class CustomFieldAdmin(admin.ModelAdmin):
    list_display = ["label", "key", "field_type", "archived", "organization"]
    list_filter = ["organization", "field_type", "archived"]
    search_fields = ["label", "key"]


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ["__str__", "candidate", "author", "pinned", "organization", "created_at"]
    list_filter = ["organization", "pinned"]
    raw_id_fields = ["candidate", "author"]
    list_select_related = ["candidate", "author", "organization"]


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ["kind", "summary", "candidate", "actor", "organization", "occurred_at"]
    list_filter = ["organization", "kind"]
    raw_id_fields = ["candidate", "actor", "note"]
    list_select_related = ["candidate", "actor", "organization"]


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    list_display = ["original_name", "candidate", "kind", "extraction_status", "organization"]
    list_filter = ["organization", "kind", "extraction_status"]
    raw_id_fields = ["candidate", "uploaded_by"]
    exclude = ["extracted_text"]

    # Through the service: the stored file goes with the row, the timeline says who removed it.
    def delete_model(self, request, obj) -> None:
        attachment_delete(attachment=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for attachment in queryset.select_related("candidate"):
            attachment_delete(attachment=attachment, actor=request.user)


@admin.register(SavedSearch)
class SavedSearchAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "organization", "created_at"]
    list_filter = ["organization"]
    raw_id_fields = ["owner"]


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "status", "processed", "total", "organization", "created_at"]
    list_filter = ["organization", "kind", "status"]
    raw_id_fields = ["created_by"]

    # Through the service, so that the uploaded and produced files go with the rows.
    def delete_model(self, request, obj) -> None:
        jobs_delete(job_ids=[obj.pk])

    def delete_queryset(self, request, queryset) -> None:
        jobs_delete(job_ids=list(queryset.values_list("pk", flat=True)))


@admin.register(ImportRowError)
class ImportRowErrorAdmin(admin.ModelAdmin):
    list_display = ["job", "row_number", "reason", "organization"]
    list_filter = ["organization"]
    raw_id_fields = ["job"]


@admin.register(DuplicateSuggestion)
class DuplicateSuggestionAdmin(admin.ModelAdmin):
    list_display = ["candidate_a", "candidate_b", "reason", "score", "state", "organization"]
    list_filter = ["organization", "reason", "state"]
    raw_id_fields = ["candidate_a", "candidate_b"]


@admin.register(MergeRecord)
class MergeRecordAdmin(admin.ModelAdmin):
    list_display = ["primary", "secondary", "merged_by", "merged_at", "undone_at", "organization"]
    list_filter = ["organization"]
    raw_id_fields = ["primary", "secondary", "merged_by", "undone_by"]
