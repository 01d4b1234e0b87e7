"""The database keeps pool memberships inside their organisation: pool, candidate and stage
are each checked together with organization_id by one composite foreign key (migration 0004),
which is also the fewest foreign-key checks per inserted membership."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from candidates.tests.factories import CandidateFactory
from pipelines import services
from pipelines.models import Pool, PoolMembership, Stage
from pipelines.selectors import stages_default
from pipelines.tests.factories import PoolFactory

pytestmark = pytest.mark.django_db


def _rejected_at_commit(**fields):
    """Whether the deferred foreign keys refuse a membership with these fields."""
    try:
        with transaction.atomic():
            PoolMembership.objects.create(**fields)
            connection.check_constraints()
    except IntegrityError:
        return True
    return False


def test_membership_foreign_keys_stay_inside_the_organisation(
    org, other_org, pool, stages, unscoped
):
    with unscoped():
        candidate = CandidateFactory(organization=org)
        outsider = CandidateFactory(organization=other_org)
        other_pool = PoolFactory(organization=other_org)
        other_stage = stages_default(organization=other_org)[0]
        valid = {
            "organization": org,
            "pool": pool,
            "candidate": candidate,
            "stage": stages[0],
            "entered_stage_at": timezone.now(),
            "added_at": timezone.now(),
        }

        assert not _rejected_at_commit(**valid)
        assert _rejected_at_commit(**{**valid, "candidate": outsider})
        assert _rejected_at_commit(**{**valid, "pool": other_pool})
        assert _rejected_at_commit(**{**valid, "stage": other_stage})
        assert _rejected_at_commit(**{**valid, "candidate_id": 10**12})


def _foreign_keys(table):
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT array_agg(a.attname ORDER BY k.n), c.confrelid::regclass::text
            FROM pg_constraint c
            CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k (attnum, n)
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
            WHERE c.conrelid = %s::regclass AND c.contype = 'f'
            GROUP BY c.oid, c.confrelid
            """,
            [table],
        )
        return {(tuple(columns), target) for columns, target in cursor.fetchall()}


def test_memberships_have_one_foreign_key_check_per_referenced_row():
    """Each key is checked by one query per inserted row: the organisation is checked together
    with pool, candidate and stage, never on its own."""
    assert _foreign_keys(PoolMembership._meta.db_table) == {
        (("organization_id", "pool_id"), "pipelines_pool"),
        (("organization_id", "candidate_id"), "candidates_candidate"),
        (("organization_id", "stage_id"), "pipelines_stage"),
        (("added_by_id",), "crm_user"),
    }


def test_pool_and_stage_of_members_cannot_move_to_another_organisation(
    org, other_org, pool, stages
):
    with scopes_disabled():
        candidate = CandidateFactory(organization=org)
        services.pool_add_candidates(pool=pool, candidate_ids=[candidate.pk], actor=None)

        for model, pk in ((Pool, pool.pk), (Stage, stages[0].pk)):
            with pytest.raises(IntegrityError), transaction.atomic():
                model.objects.filter(pk=pk).update(organization=other_org)
                connection.check_constraints()
