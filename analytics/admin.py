from django.contrib import admin

from analytics.models import EngagementEvent


@admin.register(EngagementEvent)
class EngagementEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "organization", "kind", "candidate", "campaign", "is_machine"]
    list_filter = ["kind", "is_machine"]
    raw_id_fields = ["candidate", "campaign", "message"]
    date_hierarchy = "occurred_at"
