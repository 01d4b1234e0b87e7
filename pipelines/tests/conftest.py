import pytest
from django_scopes import scope

from candidates.tests.factories import CandidateFactory
from pipelines.selectors import stages_default
from pipelines.tests.factories import PoolFactory


@pytest.fixture
def stages(org):
    with scope(organization=org):
        return stages_default(organization=org)


@pytest.fixture
def pool(org, recruiter_user, stages):
    return PoolFactory(organization=org, owner=recruiter_user, name="Backend engineers")


@pytest.fixture
def make_candidates(org):
    def make(count, **fields):
        return [CandidateFactory(organization=org, **fields) for _ in range(count)]

    return make


@pytest.fixture
def add(in_org):
    """Add candidates to a pool through the service: add(pool, candidates, actor)."""
    from pipelines.services import pool_add_candidates

    def run(pool, candidates, actor=None):
        with in_org():
            return pool_add_candidates(
                pool=pool, candidate_ids=[c.pk for c in candidates], actor=actor
            )

    return run
