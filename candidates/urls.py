"""Candidate URLs, mounted at /o/<org_slug>/candidates/. Every pattern is swept by
tests/test_isolation.py; a new URL keyword argument needs an entry in its OBJECT_KWARGS.

Each area keeps its patterns in its own section below.
"""

from django.urls import path

from candidates.views import jobs, search

app_name = "candidates"

urlpatterns = [
    # --- jobs: progress pages and downloads (views/jobs.py) ---
    path("jobs/<int:job_id>/", jobs.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/download/", jobs.job_download, name="job_download"),
    # --- list, search, saved searches, bulk actions, export (views/search.py) ---
    path("", search.candidate_list, name="list"),
    # --- profiles, notes, timeline, custom fields (views/profile.py) ---
    # --- import (views/imports.py) ---
    # --- attachments (views/attachments.py) ---
    # --- duplicates and merges (views/duplicates.py) ---
]
