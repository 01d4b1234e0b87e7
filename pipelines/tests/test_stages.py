import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from candidates.models import Activity
from pipelines import selectors, services
from pipelines.models import Pool, PoolMembership, Stage, StageChange

pytestmark = pytest.mark.django_db


def url(name, org, **kwargs):
    return reverse(f"pipelines:{name}", kwargs={"org_slug": org.slug, **kwargs})


def test_stage_list_for_admins(admin_client, org, stages):
    response = admin_client.get(url("stage_list", org))

    assert response.status_code == 200
    assert [row[0].name for row in response.context["active_rows"]] == [s.name for s in stages]


def test_stage_list_recruiter_is_403(recruiter_client, org, stages):
    assert recruiter_client.get(url("stage_list", org)).status_code == 403


def test_stage_add_and_duplicate_name_error(admin_client, org, stages, unscoped):
    created = admin_client.post(url("stage_add", org), {"name": "Offer", "outcome": "open"})
    duplicate = admin_client.post(url("stage_add", org), {"name": "offer", "outcome": "open"})

    assert created.status_code == 302
    assert duplicate.status_code == 400
    assert "There is already a stage called" in duplicate.content.decode()
    with unscoped():
        assert Stage.objects.filter(organization=org, name="Offer").count() == 1


def test_stage_rename_keeps_history(
    admin_client, org, pool, stages, make_candidates, add, in_org, unscoped
):
    add(pool, make_candidates(1))
    with in_org():
        membership = PoolMembership.objects.get(pool=pool)
        services.membership_move(membership=membership, to_stage=stages[1], actor=None)

    response = admin_client.post(
        url("stage_edit", org, stage_id=stages[1].pk), {"name": "Reached out", "outcome": "open"}
    )

    assert response.status_code == 302
    with unscoped():
        change = StageChange.objects.select_related("to_stage").get()
    assert change.to_stage.name == "Reached out"


def test_stage_archive_refused_while_candidates_are_in_it(
    admin_client, org, pool, stages, make_candidates, add, unscoped
):
    add(pool, make_candidates(1))

    response = admin_client.post(url("stage_archive", org, stage_id=stages[0].pk), follow=True)

    assert "Choose the stage they move to, or move them first." in response.content.decode()
    with unscoped():
        assert Stage.objects.get(pk=stages[0].pk).archived is False


def test_stage_archive_moves_its_candidates_in_every_pool_and_records_the_moves(
    admin_client, admin_user, org, pool, recruiter_user, stages, make_candidates, add, unscoped
):
    from pipelines.tests.factories import PoolFactory

    other_pool = PoolFactory(organization=org, owner=recruiter_user, name="Second")
    add(pool, make_candidates(2))
    add(other_pool, make_candidates(1))

    page = admin_client.get(url("stage_list", org))
    response = admin_client.post(
        url("stage_archive", org, stage_id=stages[0].pk),
        {"archived": "1", "move_to": stages[1].pk},
        follow=True,
    )

    assert 'name="move_to"' in page.content.decode()
    assert "3 candidates moved to “Contacted”" in response.content.decode()
    with unscoped():
        assert Stage.objects.get(pk=stages[0].pk).archived is True
        assert set(PoolMembership.objects.values_list("stage_id", flat=True)) == {stages[1].pk}
        moves = StageChange.objects.filter(from_stage=stages[0], to_stage=stages[1])
        assert moves.count() == 3
        assert set(moves.values_list("changed_by_id", flat=True)) == {admin_user.pk}
        assert Activity.objects.filter(kind="stage_changed").count() == 3


def test_stage_archive_with_a_stage_of_another_pipeline_is_refused(
    org, recruiter_user, stages, make_candidates, add, in_org, unscoped
):
    from pipelines.tests.factories import PoolFactory

    default_pool = PoolFactory(organization=org, owner=recruiter_user, name="Defaults")
    own_pool = PoolFactory(organization=org, owner=recruiter_user, name="Own stages")
    add(default_pool, make_candidates(1))
    with in_org():
        own = services.pool_customize_stages(pool=own_pool)

        with pytest.raises(ValidationError, match="same pipeline"):
            services.stage_archive(stage=stages[0], move_to=own[1], actor=None)
        with pytest.raises(ValidationError, match="same pipeline"):
            services.stage_archive(stage=stages[0], move_to=stages[0], actor=None)

    with unscoped():
        assert Stage.objects.get(pk=stages[0].pk).archived is False
        assert PoolMembership.objects.get(pool=default_pool).stage_id == stages[0].pk


def test_stage_archive_keeps_the_stage_and_its_history(
    admin_client, org, pool, stages, make_candidates, add, in_org, unscoped
):
    add(pool, make_candidates(1))
    with in_org():
        membership = PoolMembership.objects.get(pool=pool)
        services.membership_move(membership=membership, to_stage=stages[2], actor=None)
        services.membership_move(membership=membership, to_stage=stages[3], actor=None)

    response = admin_client.post(url("stage_archive", org, stage_id=stages[2].pk))
    board = admin_client.get(url("pool_board", org, pool_id=pool.pk))

    assert response.status_code == 302
    with unscoped():
        assert Stage.objects.get(pk=stages[2].pk).archived is True
        assert StageChange.objects.filter(to_stage=stages[2]).count() == 1
    assert stages[2].pk not in [column.stage.pk for column in board.context["columns"]]


def test_stage_restore(admin_client, org, stages, unscoped):
    admin_client.post(url("stage_archive", org, stage_id=stages[2].pk))

    admin_client.post(url("stage_archive", org, stage_id=stages[2].pk), {"archived": "0"})

    with unscoped():
        assert Stage.objects.get(pk=stages[2].pk).archived is False


def test_stage_archive_last_open_stage_is_refused(org, stages, in_org):
    with in_org():
        for stage in stages[1:5]:
            services.stage_archive(stage=stage)
        with pytest.raises(ValidationError):
            services.stage_archive(stage=stages[0])


def test_stage_reorder(admin_client, org, stages, in_org):
    admin_client.post(url("stage_reorder", org, stage_id=stages[1].pk), {"direction": "up"})

    with in_org():
        names = [stage.name for stage in selectors.stages_default(organization=org)]
    assert names[:2] == [stages[1].name, stages[0].name]


def test_pool_customize_stages_copies_and_keeps_cards(
    recruiter_client, org, pool, stages, make_candidates, add, unscoped
):
    add(pool, make_candidates(2))

    response = recruiter_client.post(url("pool_customize_stages", org, pool_id=pool.pk))
    renamed = recruiter_client.post(
        url(
            "pool_stage_edit",
            org,
            pool_id=pool.pk,
            stage_id=_pool_stage(pool, "New", unscoped).pk,
        ),
        {"name": "Sourced", "outcome": "open"},
    )

    assert response.status_code == 302 and renamed.status_code == 302
    with unscoped():
        stage_names = set(
            PoolMembership.objects.filter(pool=pool).values_list("stage__name", flat=True)
        )
        default_names = list(
            Stage.objects.filter(organization=org, pool__isnull=True).values_list("name", flat=True)
        )
    assert stage_names == {"Sourced"}
    assert "New" in default_names  # the organisation's stages are untouched


def test_pool_add_candidates_with_the_pool_read_before_a_customisation_uses_its_own_stages(
    org, pool, stages, make_candidates, in_org, unscoped
):
    """A page read the pool before someone customised its stages in another tab: the people
    it adds still go into the pool's own first stage, where its board shows them — not into
    the organisation's "New", off the board."""
    (candidate,) = make_candidates(1)
    with in_org():
        read_before = Pool.objects.get(pk=pool.pk)
        services.pool_customize_stages(pool=Pool.objects.get(pk=pool.pk))

        services.pool_add_candidates(pool=read_before, candidate_ids=[candidate.pk], actor=None)

    with unscoped():
        stage = PoolMembership.objects.select_related("stage").get(pool=pool).stage
    assert (stage.pool_id, stage.name) == (pool.pk, "New")


def _pool_stage(pool, name, unscoped):
    with unscoped():
        return Stage.objects.get(pool=pool, name=name)


def test_pool_stage_list_of_pool_without_own_stages_is_403(recruiter_client, org, pool):
    assert recruiter_client.get(url("pool_stage_list", org, pool_id=pool.pk)).status_code == 403
