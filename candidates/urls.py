"""Candidate URLs, mounted at /o/<org_slug>/candidates/. Every pattern is swept by
tests/test_isolation.py; a new URL keyword argument needs an entry in its OBJECT_KWARGS.

Each area keeps its patterns in its own section below.
"""

from django.urls import path

from candidates.views import attachments, duplicates, fields, imports, jobs, profile, search

app_name = "candidates"

urlpatterns = [
    # --- jobs: progress pages, downloads, resuming a bulk action (views/jobs.py) ---
    path("jobs/<int:job_id>/", jobs.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/download/", jobs.job_download, name="job_download"),
    path("jobs/<int:job_id>/resume/", jobs.job_resume, name="job_resume"),
    # --- list, search, saved searches, bulk actions, export (views/search.py) ---
    path("", search.candidate_list, name="list"),
    path("saved-searches/", search.saved_search_create, name="saved_search_create"),
    path(
        "saved-searches/<int:saved_search_id>/",
        search.saved_search_save_changes,
        name="saved_search_save_changes",
    ),
    path(
        "saved-searches/<int:saved_search_id>/rename/",
        search.saved_search_rename_view,
        name="saved_search_rename",
    ),
    path(
        "saved-searches/<int:saved_search_id>/delete/",
        search.saved_search_delete,
        name="saved_search_delete",
    ),
    path("bulk/", search.candidate_bulk, name="bulk"),
    # --- profiles, notes, timeline, custom fields (views/profile.py) ---
    path("new/", profile.candidate_new, name="new"),
    path("<int:candidate_id>/", profile.candidate_detail, name="detail"),
    path("<int:candidate_id>/edit/", profile.candidate_edit, name="edit"),
    path("<int:candidate_id>/notes/", profile.note_add, name="note_add"),
    path("<int:candidate_id>/notes/<int:note_id>/edit/", profile.note_edit, name="note_edit"),
    path("<int:candidate_id>/notes/<int:note_id>/delete/", profile.note_delete, name="note_delete"),
    path("<int:candidate_id>/notes/<int:note_id>/pin/", profile.note_pin, name="note_pin"),
    path("fields/", fields.field_list, name="fields"),
    path("fields/new/", fields.field_add, name="field_add"),
    path("fields/<int:field_id>/", fields.field_edit, name="field_edit"),
    path("fields/<int:field_id>/archive/", fields.field_archive, name="field_archive"),
    # --- import (views/imports.py) ---
    path("import/", imports.import_upload, name="import"),
    path("import/<int:job_id>/mapping/", imports.import_mapping, name="import_mapping"),
    path("import/<int:job_id>/preview/", imports.import_preview, name="import_preview"),
    path("import/<int:job_id>/start/", imports.import_start, name="import_start"),
    path("import/<int:job_id>/resume/", imports.import_resume, name="import_resume"),
    path("import/<int:job_id>/discard/", imports.import_discard, name="import_discard"),
    # --- attachments (views/attachments.py) ---
    path(
        "<int:candidate_id>/files/",
        attachments.attachment_upload,
        name="attachment_upload",
    ),
    path(
        "files/<int:attachment_id>/download/",
        attachments.attachment_download,
        name="attachment_download",
    ),
    path(
        "files/<int:attachment_id>/delete/",
        attachments.attachment_remove,
        name="attachment_delete",
    ),
    # --- duplicates and merges (views/duplicates.py) ---
    path("duplicates/", duplicates.duplicate_list, name="duplicates"),
    path("duplicates/scan/", duplicates.duplicate_scan, name="duplicates_scan"),
    path(
        "duplicates/<int:suggestion_id>/dismiss/",
        duplicates.duplicate_dismiss_view,
        name="duplicate_dismiss",
    ),
    path("<int:candidate_id>/merge/", duplicates.candidate_merge_view, name="merge"),
    path("merges/<int:merge_id>/undo/", duplicates.merge_undo, name="merge_undo"),
]
