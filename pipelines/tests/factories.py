"""factory_boy factories of the pipelines app (they run under scopes_disabled())."""

import factory
from django.utils import timezone

from candidates.tests.factories import CandidateFactory
from pipelines.models import FollowUp, HiringRole, Pool, PoolMembership, Stage
from tests.factories import OrganizationFactory, ScopesDisabledFactory


class PoolFactory(ScopesDisabledFactory):
    class Meta:
        model = Pool

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Pool {n}")


class StageFactory(ScopesDisabledFactory):
    class Meta:
        model = Stage

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Stage {n}")
    position = factory.Sequence(lambda n: n)


class PoolMembershipFactory(ScopesDisabledFactory):
    class Meta:
        model = PoolMembership

    pool = factory.SubFactory(PoolFactory)
    organization = factory.SelfAttribute("pool.organization")
    candidate = factory.SubFactory(
        CandidateFactory, organization=factory.SelfAttribute("..organization")
    )
    stage = factory.SubFactory(StageFactory, organization=factory.SelfAttribute("..organization"))
    entered_stage_at = factory.LazyFunction(timezone.now)
    added_at = factory.LazyFunction(timezone.now)


class HiringRoleFactory(ScopesDisabledFactory):
    class Meta:
        model = HiringRole

    organization = factory.SubFactory(OrganizationFactory)
    title = factory.Sequence(lambda n: f"Role {n}")


class FollowUpFactory(ScopesDisabledFactory):
    class Meta:
        model = FollowUp

    candidate = factory.SubFactory(CandidateFactory)
    organization = factory.SelfAttribute("candidate.organization")
    due_on = factory.LazyFunction(timezone.localdate)
    note = "Call about the new role"
