"""The demo organisation shows every feature of candidates and pipelines: varied profiles with
notes and tags, searchable resumes, duplicates to review, pools with a worked history, a smart
pool, roles (one of them thin) and follow-ups."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.postgres.search import SearchQuery
from django.db.models import Q
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from candidates.demo import seed_demo_candidates
from candidates.models import Activity, Attachment, Candidate, DuplicateSuggestion, Note
from crm.models import Role
from pipelines.demo import seed_demo_data
from pipelines.models import FollowUp, Pool, PoolMembership, StageChange
from pipelines.selectors import role_list_rows
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    organization = OrganizationFactory(name="Demo", slug="demo-test")
    users = {}
    for role in (Role.ADMIN, Role.RECRUITER, Role.VIEWER):
        users[role] = UserFactory(email=f"{role}@demo.example")
        MembershipFactory(organization=organization, user=users[role], role=role)
    started = timezone.now()
    with scope(organization=organization):
        seed_demo_candidates(organization=organization, users=users, stdout=StringIO())
        seed_demo_data(organization=organization, users=users, stdout=StringIO())
    return organization, users, started


def test_demo_has_varied_candidates_notes_and_searchable_resumes(demo):
    organization, _, _ = demo
    with scopes_disabled():
        candidates = Candidate.objects.filter(organization=organization)
        resumes = Attachment.objects.filter(organization=organization, kind="resume")
        resume_words = candidates.filter(search_vector=SearchQuery("mentored", config="english"))
        assert 290 <= candidates.count() <= 320
        assert Note.objects.filter(organization=organization).count() >= 80
        # "Last contacted" is backed by the timeline: a logged call, meeting or message, or a
        # campaign email.
        contacted = set(candidates.filter(contact__isnull=False).values_list("pk", flat=True))
        backed = set(
            Activity.objects.filter(organization=organization, candidate_id__in=contacted)
            .filter(Q(kind="email_sent") | Q(kind="note_added", note__contact__gt=""))
            .values_list("candidate_id", flat=True)
        )
        assert len(contacted) >= 100 and backed == contacted
        assert candidates.exclude(tags=[]).count() >= 50
        assert len(set(candidates.values_list("status", flat=True))) == 4
        assert resumes.count() == 12
        assert set(resumes.values_list("extraction_status", flat=True)) == {"done"}
        assert set(resumes.values_list("content_type", flat=True)) == {
            "application/pdf",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        }
        assert set(resumes.values_list("candidate_id", flat=True)) <= set(
            resume_words.values_list("pk", flat=True)
        )


def test_demo_has_duplicates_of_every_kind_to_review(demo):
    organization, _, _ = demo
    with scopes_disabled():
        reasons = set(
            DuplicateSuggestion.objects.filter(organization=organization, state="open").values_list(
                "reason", flat=True
            )
        )
    assert reasons == {"email", "phone", "name_company"}


def test_demo_pools_have_a_worked_history_a_smart_pool_roles_and_follow_ups(demo):
    organization, users, started = demo
    with scopes_disabled():
        pools = Pool.objects.filter(organization=organization)
        smart = pools.get(kind=Pool.Kind.SMART)
        assert pools.filter(kind=Pool.Kind.STATIC).count() >= 4
        assert PoolMembership.objects.filter(pool=smart).count() > 0
        assert FollowUp.objects.filter(organization=organization).count() == 10
        # Moves along the pipeline happened over past weeks, not all at seeding time.
        changes = StageChange.objects.filter(organization=organization)
        assert changes.count() > 50
        assert not changes.filter(changed_at__gte=started).exists()
        assert not Activity.objects.filter(
            organization=organization, kind="stage_changed", occurred_at__gte=started
        ).exists()
        assert changes.filter(changed_at__lt=started - timedelta(days=14)).exists()
    with scope(organization=organization):
        rows = role_list_rows(organization=organization, user=users[Role.ADMIN])
    assert len(rows) == 4
    assert [row.role.title for row in rows if row.is_thin] == ["Data Engineers (new platform team)"]
