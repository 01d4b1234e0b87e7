"""What candidate pages show: a stored number outside its field's new limits (profile and edit
form), the limits on a phone's custom field list, the bound of an "all matching" bulk
confirmation and what Resume does on a stopped bulk job's page."""

import re
from decimal import Decimal

import pytest
from django.db import OperationalError
from django.urls import reverse
from django_scopes import scopes_disabled

from candidates.models import Job
from candidates.tests.factories import CandidateFactory, CustomFieldFactory


@pytest.fixture
def years(org):
    return CustomFieldFactory(
        organization=org,
        key="years",
        label="Years of experience",
        field_type="number",
        min_value=Decimal("1"),
        max_value=Decimal("60"),
    )


def test_profile_flags_a_stored_number_outside_the_fields_limits(org, recruiter_client, years):
    outside = CandidateFactory(organization=org, custom_fields={"years": 75})
    inside = CandidateFactory(organization=org, custom_fields={"years": 12})

    flagged = recruiter_client.get(
        reverse("candidates:detail", args=[org.slug, outside.pk])
    ).content.decode()
    plain = recruiter_client.get(
        reverse("candidates:detail", args=[org.slug, inside.pk])
    ).content.decode()

    assert "No longer allowed (from 1 to 60)" in flagged
    assert "custom-value-outside" not in plain


def test_edit_form_shows_the_stored_value_problem_as_a_warning(org, recruiter_client, years):
    candidate = CandidateFactory(organization=org, custom_fields={"years": 75})
    page = recruiter_client.get(
        reverse("candidates:edit", args=[org.slug, candidate.pk])
    ).content.decode()
    [number_input] = re.findall(r'<input[^>]*name="cf_years"[^>]*>', page)
    assert "border-warning" in number_input
    assert re.search(
        r'<div class="form-text text-warning-emphasis" id="id_cf_years_helptext">\s*'
        r'<i class="bi bi-exclamation-triangle" aria-hidden="true"></i> The stored value 75',
        page,
    )


def test_edit_form_keeps_plain_help_for_a_value_inside_the_limits(org, recruiter_client, years):
    candidate = CandidateFactory(organization=org, custom_fields={"years": 12})
    page = recruiter_client.get(
        reverse("candidates:edit", args=[org.slug, candidate.pk])
    ).content.decode()
    assert '<div class="form-text" id="id_cf_years_helptext">From 1 to 60.</div>' in page
    assert "text-warning-emphasis" not in page


def test_custom_field_list_shows_the_limits_on_a_phone_too(org, admin_client, years):
    page = admin_client.get(reverse("candidates:fields", args=[org.slug])).content.decode()
    phone_line = re.search(
        r'<div class="small text-body-secondary d-md-none">(.*?)</td>', page, re.S
    )
    assert phone_line is not None
    assert "From 1 to 60" in phone_line.group(1)


def test_all_matching_confirmation_says_later_candidates_are_left_out(recruiter_client, org):
    CandidateFactory(organization=org, city="Berlin")
    all_matching = recruiter_client.get(
        reverse("candidates:bulk", args=[org.slug]),
        {"action": "tag", "select_all": "1", "query": "city=Berlin"},
    ).content.decode()
    ticked = recruiter_client.get(
        reverse("candidates:bulk", args=[org.slug]),
        {"action": "tag", "ids": [CandidateFactory(organization=org).pk]},
    ).content.decode()
    assert "candidates added since are left out" in all_matching
    assert "candidates added since are left out" not in ticked


def _stopped_job(org, user, action):
    with scopes_disabled():
        return Job.objects.create(
            organization=org,
            kind=Job.Kind.EXPORT if action == "export" else Job.Kind.BULK,
            status=Job.Status.FAILED,
            created_by=user,
            total=5,
            processed=2,
            params={"action": action, "args": {}, "selection": {"ids": []}, "cursor": 0},
            error="The job stopped (OperationalError).",
        )


def test_stopped_bulk_job_says_what_resume_does(org, recruiter_user, recruiter_client):
    job = _stopped_job(org, recruiter_user, "tag")
    page = recruiter_client.get(
        reverse("candidates:job_detail", args=[org.slug, job.pk])
    ).content.decode()
    assert "The candidates counted above are done; Resume continues with the rest." in page


def test_stopped_delete_job_does_not_offer_resume_to_a_recruiter(
    org, recruiter_user, recruiter_client
):
    job = _stopped_job(org, recruiter_user, "delete")
    page = recruiter_client.get(
        reverse("candidates:job_detail", args=[org.slug, job.pk])
    ).content.decode()
    assert "The job stopped (OperationalError)." in page
    assert "Resume continues" not in page


def test_a_bulk_job_that_failed_says_what_is_kept_and_what_resume_does_once(
    org, recruiter_user, recruiter_client, monkeypatch
):
    """The message the job stores on failure and the page's sentence about Resume are not
    the same words twice."""
    from candidates.services import bulk

    job = _stopped_job(org, recruiter_user, "tag")
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(
            error=bulk._stopped_message(job, OperationalError("lost"))
        )
    page = recruiter_client.get(
        reverse("candidates:job_detail", args=[org.slug, job.pk])
    ).content.decode()
    assert page.count("Resume continues with the rest") == 1
    assert "The job stopped (OperationalError)." in page


def test_job_progress_writes_large_counts_with_separators(org, recruiter_user, recruiter_client):
    job = _stopped_job(org, recruiter_user, "tag")
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(processed=250_000, total=1_000_000)
    page = recruiter_client.get(
        reverse("candidates:job_detail", args=[org.slug, job.pk])
    ).content.decode()
    assert "250,000 of 1,000,000 · 25%" in page


def test_job_page_says_who_started_it_and_when_in_the_organisations_time(
    org, recruiter_user, recruiter_client
):
    import datetime

    with scopes_disabled():
        org.time_zone = "America/New_York"
        org.save(update_fields=["time_zone"])
    job = _stopped_job(org, recruiter_user, "tag")
    started = datetime.datetime(2026, 3, 10, 15, 30, tzinfo=datetime.UTC)
    with scopes_disabled():
        Job.objects.filter(pk=job.pk).update(
            started_at=started, finished_at=started + datetime.timedelta(minutes=7)
        )
    page = recruiter_client.get(
        reverse("candidates:job_detail", args=[org.slug, job.pk])
    ).content.decode()
    times = re.search(r'class="[^"]*job-times[^"]*">(.*?)</p>', page, re.S).group(1)
    assert " ".join(times.split()) == (
        f"By {recruiter_user.display_name} · Started 10 Mar 2026, 11:30 · ended 10 Mar 2026, 11:37"
    )
