"""Operators' admin for the pipelines app (the admin runs unscoped for staff; see crm)."""

from django.contrib import admin

from pipelines.models import FollowUp, HiringRole, Pool, PoolMembership, Stage, StageChange


@admin.register(Pool)
class PoolAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "kind", "visibility", "owner", "created_at"]
    list_filter = ["kind", "visibility"]
    search_fields = ["name"]
    raw_id_fields = ["organization", "owner", "saved_search"]


@admin.register(Stage)
class StageAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "pool", "position", "outcome", "archived"]
    list_filter = ["outcome", "archived"]
    raw_id_fields = ["organization", "pool"]


@admin.register(PoolMembership)
class PoolMembershipAdmin(admin.ModelAdmin):
    list_display = ["candidate", "pool", "stage", "source", "added_at"]
    list_select_related = ["candidate", "pool", "stage"]
    raw_id_fields = ["organization", "pool", "candidate", "stage", "added_by"]


@admin.register(StageChange)
class StageChangeAdmin(admin.ModelAdmin):
    list_display = ["candidate", "pool", "from_stage", "to_stage", "changed_by", "changed_at"]
    list_select_related = ["candidate", "pool", "from_stage", "to_stage", "changed_by"]
    raw_id_fields = [
        "organization",
        "pool",
        "membership",
        "candidate",
        "from_stage",
        "to_stage",
        "changed_by",
    ]


@admin.register(HiringRole)
class HiringRoleAdmin(admin.ModelAdmin):
    list_display = ["title", "organization", "status", "target_date", "headcount"]
    list_filter = ["status"]
    raw_id_fields = ["organization", "created_by"]


@admin.register(FollowUp)
class FollowUpAdmin(admin.ModelAdmin):
    list_display = ["candidate", "owner", "due_on", "completed_at", "source"]
    list_filter = ["source"]
    raw_id_fields = ["organization", "candidate", "owner", "created_by", "completed_by"]
