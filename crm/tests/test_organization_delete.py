"""An operator can delete a whole tenant — in the Django admin or with
`manage.py delete_organization` — however much history it has, while the guards on history
inside a living organisation (a stage that cards were moved through) stay."""

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db.models import RestrictedError
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from analytics.models import EngagementEvent
from campaigns.models import Campaign, Message
from candidates.models import Activity, Candidate
from candidates.tests.factories import CandidateFactory
from crm.management.commands.seed_demo import DEMO_SLUG
from crm.models import Organization
from pipelines import services as pipelines
from pipelines.models import PoolMembership, Stage, StageChange
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _tenant_rows(organization_id: int) -> dict[str, int]:
    """Rows of every tenant-owned model (every model with an `organization` field)."""
    counts = {}
    with scopes_disabled():
        for model in apps.get_models():
            names = {f.name for f in model._meta.get_fields()}
            if "organization" in names and model is not Organization:
                counts[model._meta.label] = model._base_manager.filter(
                    organization_id=organization_id
                ).count()
    return counts


def _pool_with_history(org, user):
    """Another tenant with a pool, a card moved through stages and its history."""
    with scope(organization=org):
        stages = pipelines.stages_create_defaults(organization=org)
        pool = pipelines.pool_create(organization=org, owner=user, name="Backend")
        candidate = CandidateFactory(organization=org)
        pipelines.pool_add_candidates(pool=pool, candidate_ids=[candidate.pk], actor=user)
        membership = PoolMembership.objects.get(pool=pool)
        pipelines.membership_move(membership=membership, to_stage=stages[1], actor=user)
    return pool, stages


@pytest.fixture
def demo():
    call_command("seed_demo", stdout=StringIO())
    with scopes_disabled():
        organization = Organization.objects.get(slug=DEMO_SLUG)
    rows = _tenant_rows(organization.pk)
    # The demo has everything a tenant accumulates: the deletion must get through all of it.
    for label in (
        "candidates.Candidate",
        "candidates.Activity",
        "pipelines.Pool",
        "pipelines.Stage",
        "pipelines.PoolMembership",
        "pipelines.StageChange",
        "campaigns.Campaign",
        "campaigns.Message",
        "analytics.EngagementEvent",
    ):
        assert rows[label] > 0, label
    return organization


def test_admin_deletes_a_whole_tenant_and_nothing_of_another(demo, other_org, client):
    other_user = UserFactory()
    _pool_with_history(other_org, other_user)
    other_before = _tenant_rows(other_org.pk)
    operator = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(operator)
    url = reverse("admin:crm_organization_delete", args=[demo.pk])

    confirmation = client.get(url)
    response = client.post(url, {"post": "yes"})

    assert confirmation.status_code == 200
    assert "Cannot delete" not in confirmation.content.decode()
    assert response.status_code == 302
    assert not Organization.objects.filter(pk=demo.pk).exists()
    assert set(_tenant_rows(demo.pk).values()) == {0}
    assert _tenant_rows(other_org.pk) == other_before


def test_delete_organization_command_needs_the_slug_twice(demo):
    with pytest.raises(CommandError, match="--confirm"):
        call_command("delete_organization", DEMO_SLUG, stdout=StringIO())
    assert Organization.objects.filter(pk=demo.pk).exists()

    out = StringIO()
    call_command("delete_organization", DEMO_SLUG, confirm=DEMO_SLUG, stdout=out)

    assert not Organization.objects.filter(pk=demo.pk).exists()
    assert set(_tenant_rows(demo.pk).values()) == {0}
    assert "candidates.Candidate" in out.getvalue()
    with scopes_disabled():
        assert not Candidate.objects.filter(organization_id=demo.pk).exists()
        assert not Message.objects.filter(organization_id=demo.pk).exists()
        assert not EngagementEvent.objects.filter(organization_id=demo.pk).exists()
        assert not Campaign.objects.filter(organization_id=demo.pk).exists()
        assert not Activity.objects.filter(organization_id=demo.pk).exists()


def test_delete_organization_command_unknown_slug(db):
    with pytest.raises(CommandError, match="No organisation"):
        call_command("delete_organization", "nope", confirm="nope", stdout=StringIO())


def test_a_stage_with_history_still_cannot_be_deleted_on_its_own(org, recruiter_user):
    _, stages = _pool_with_history(org, recruiter_user)

    with scopes_disabled(), pytest.raises(RestrictedError):
        Stage.objects.get(pk=stages[1].pk).delete()
    with scopes_disabled():
        assert StageChange.objects.filter(to_stage=stages[1]).count() == 1
