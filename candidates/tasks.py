"""Celery tasks of the candidates app. Thin: explicit name, primitive arguments, the
organisation's scope entered by OrganizationTask, then a service call. Each area keeps its
tasks in its own section."""

from crm.celery import OrganizationTask, app  # noqa: F401

# --- bulk actions and export ---

# --- import ---

# --- attachments (text extraction) ---

# --- duplicates ---
