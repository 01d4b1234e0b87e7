import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.tests.factories import make_broadcast
from candidates.tests.factories import CandidateFactory
from pipelines.models import FollowUp

pytestmark = pytest.mark.django_db


def test_home_shows_figures_newest_candidates_and_my_due_follow_ups(
    recruiter_client, recruiter_user, org, other_org, unscoped
):
    CandidateFactory.create_batch(2, organization=org, owner=recruiter_user)
    newest = CandidateFactory(organization=org, first_name="Newest", last_name="Person")
    CandidateFactory(organization=other_org, first_name="Foreign", last_name="Person")
    with unscoped():
        FollowUp.objects.create(
            organization=org,
            candidate=newest,
            owner=recruiter_user,
            due_on=timezone.localdate() - datetime.timedelta(days=2),
            note="Ask about the platform team",
        )
        FollowUp.objects.create(
            organization=org,
            candidate=newest,
            owner=recruiter_user,
            due_on=timezone.localdate() + datetime.timedelta(days=9),
            note="Not due yet",
        )

    make_broadcast(org, user=recruiter_user, name="Spring hello")
    page = recruiter_client.get(reverse("dashboard", args=[org.slug])).content.decode()

    assert "Spring hello" in page
    assert '<div class="stat-value">3</div>' in page
    assert '<div class="stat-value">2</div>' in page  # owned by the recruiter
    assert "Newest Person" in page
    assert "Foreign" not in page
    assert "Ask about the platform team" in page
    assert "Overdue" in page
    assert "Not due yet" not in page


def test_home_of_an_empty_organisation_shows_empty_states(recruiter_client, org):
    page = recruiter_client.get(reverse("dashboard", args=[org.slug])).content.decode()

    assert "No candidates yet" in page
    assert "Nothing due today" in page
    assert "No campaigns yet" in page


def test_a_viewers_home_shows_no_figures_about_themselves(
    viewer_client, recruiter_client, viewer_user, org
):
    CandidateFactory(organization=org, owner=viewer_user)

    viewer_page = viewer_client.get(reverse("dashboard", args=[org.slug])).content.decode()
    recruiter_page = recruiter_client.get(reverse("dashboard", args=[org.slug])).content.decode()

    assert "Owned by you" not in viewer_page  # a read-only viewer owns no candidates
    assert "Your follow-ups due" not in viewer_page
    assert "Added in the last 30 days" in viewer_page
    assert "Owned by you" in recruiter_page
