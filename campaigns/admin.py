"""Operators' admin for the campaigns app (the middleware disables scopes for staff here)."""

from django.contrib import admin

from campaigns.models import (
    Campaign,
    CandidateEmailPreference,
    EmailSettings,
    EmailTemplate,
    Enrollment,
    Message,
    SendingDomain,
    Step,
    Suppression,
)


class StepInline(admin.TabularInline):
    model = Step
    extra = 0
    fields = ["position", "kind", "delay", "subject"]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "kind", "status", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["name"]
    inlines = [StepInline]
    raw_id_fields = ["template", "sender", "created_by"]
    filter_horizontal = ["saved_searches", "excluded_saved_searches"]


@admin.register(EmailTemplate)
class EmailTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "subject", "updated_at"]
    search_fields = ["name", "subject"]


@admin.register(Enrollment)
class EnrollmentAdmin(admin.ModelAdmin):
    list_display = ["candidate", "campaign", "status", "stop_reason", "next_run_at"]
    list_filter = ["status", "stop_reason"]
    raw_id_fields = ["candidate", "campaign", "current_step"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["to_email", "subject", "status", "attempts", "sent_at", "organization"]
    list_filter = ["status", "skip_reason", "is_test"]
    search_fields = ["to_email", "message_id", "esp_message_id"]
    raw_id_fields = ["campaign", "step", "enrollment", "candidate"]
    readonly_fields = ["message_id", "headers", "links"]


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["email", "reason", "organization", "created_at"]
    list_filter = ["reason"]
    search_fields = ["email"]


admin.site.register(CandidateEmailPreference)
admin.site.register(EmailSettings)


@admin.register(SendingDomain)
class SendingDomainAdmin(admin.ModelAdmin):
    list_display = [
        "domain",
        "organization",
        "verified_at",
        "warmup_started_on",
        "warmup_target_per_day",
    ]
    search_fields = ["domain"]
