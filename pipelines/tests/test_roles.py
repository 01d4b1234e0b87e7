from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.tests.markup import applies_with_show_button
from pipelines import selectors, services
from pipelines.models import HiringRole, PoolMembership, RolePool
from pipelines.tests.factories import HiringRoleFactory, PoolFactory

pytestmark = pytest.mark.django_db


def url(name, org, **kwargs):
    return reverse(f"pipelines:{name}", kwargs={"org_slug": org.slug, **kwargs})


def _link(role, *pools):
    from django_scopes import scopes_disabled

    with scopes_disabled():
        for pool in pools:
            RolePool.objects.create(organization=role.organization, role=role, pool=pool)


def test_role_readiness_counts_per_stage_across_pools(
    org, recruiter_user, pool, stages, make_candidates, add, in_org
):
    second = PoolFactory(organization=org, owner=recruiter_user)
    shared = make_candidates(1)
    add(pool, shared + make_candidates(2))
    add(second, shared + make_candidates(1))
    role = HiringRoleFactory(organization=org, headcount=1)
    _link(role, pool, second)
    with in_org():
        hired = PoolMembership.objects.filter(pool=pool).exclude(candidate=shared[0]).first()
        services.membership_move(membership=hired, to_stage=stages[5], actor=None)

        (row,) = selectors.role_list_rows(organization=org, user=recruiter_user)

    assert row.by_stage == [("New", "open", 3), ("Hired", "won", 1)]
    assert (row.active, row.hired) == (3, 1)


def test_role_thin_warning_when_target_is_near(
    org, recruiter_user, pool, make_candidates, add, in_org
):
    add(pool, make_candidates(2))
    soon = HiringRoleFactory(
        organization=org, headcount=1, target_date=timezone.localdate() + timedelta(days=10)
    )
    later = HiringRoleFactory(
        organization=org, headcount=1, target_date=timezone.localdate() + timedelta(days=200)
    )
    _link(soon, pool)
    _link(later, pool)

    with in_org():
        rows = {
            row.role.pk: row
            for row in selectors.role_list_rows(organization=org, user=recruiter_user)
        }

    assert rows[soon.pk].is_thin is True  # 2 active for 1 hire, 3 wanted
    assert rows[later.pk].is_thin is False


def test_role_list_page_warns_about_a_thin_pipeline_near_its_date(
    recruiter_client, org, pool, make_candidates, add
):
    add(pool, make_candidates(2))
    soon = HiringRoleFactory(
        organization=org,
        title="Soon",
        headcount=1,
        target_date=timezone.localdate() + timedelta(days=10),
    )
    filled = HiringRoleFactory(
        organization=org,
        title="Filled",
        headcount=1,
        status="filled",
        target_date=timezone.localdate() + timedelta(days=10),
    )
    _link(soon, pool)
    _link(filled, pool)

    body = recruiter_client.get(url("role_list", org)).content.decode()

    assert body.count("Thin pipeline:") == 1
    assert (
        "Thin pipeline: 2 active candidates for 1 hire, 10 days before the target date. "
        "Aim for at least 3." in " ".join(body.split())
    )


def test_role_list_page(viewer_client, org, pool):
    role = HiringRoleFactory(organization=org, title="Staff Engineer")
    _link(role, pool)

    response = viewer_client.get(url("role_list", org))

    assert response.status_code == 200
    assert "Staff Engineer" in response.content.decode()


def _role_list_queries(client, org):
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url("role_list", org)).status_code == 200
    return len(queries)


def test_role_list_query_count_does_not_grow_with_roles(recruiter_client, org, pool):
    _link(HiringRoleFactory(organization=org), pool)
    one = _role_list_queries(recruiter_client, org)
    for _ in range(2):
        _link(HiringRoleFactory(organization=org), pool)

    assert _role_list_queries(recruiter_client, org) == one


def test_role_list_status_filter_applies_with_its_button(viewer_client, org):
    """Choosing a status does not reload the page by itself (WCAG 3.2.2): Show does."""
    html = viewer_client.get(url("role_list", org)).content.decode()

    assert applies_with_show_button(html, "role-status")


def test_role_list_empty_state(recruiter_client, org):
    assert "No roles planned yet" in recruiter_client.get(url("role_list", org)).content.decode()


def test_role_create_with_pools(recruiter_client, org, pool, unscoped):
    response = recruiter_client.post(
        url("role_create", org),
        {
            "title": "Data Engineer",
            "team": "Data",
            "location": "Remote",
            "target_date": "2030-03-01",
            "headcount": "2",
            "status": "planned",
            "notes": "",
            "pools": [pool.pk],
        },
    )

    assert response.status_code == 302
    with unscoped():
        role = HiringRole.objects.get(title="Data Engineer")
        assert list(role.pools.all()) == [pool]


def test_role_create_invalid_headcount_shows_error(recruiter_client, org):
    response = recruiter_client.post(
        url("role_create", org), {"title": "X", "headcount": "0", "status": "planned"}
    )

    assert response.status_code == 200
    assert "At least one hire." in response.content.decode()


def test_role_target_date_more_than_five_years_ahead_is_refused(recruiter_client, org, unscoped):
    latest = services.latest_date_ahead(today=timezone.localdate())

    page = recruiter_client.get(url("role_create", org)).content.decode()
    response = recruiter_client.post(
        url("role_create", org),
        {"title": "Far", "target_date": "9999-12-31", "headcount": "1", "status": "planned"},
    )

    assert f'max="{latest.isoformat()}"' in page
    assert response.status_code == 200
    assert "Choose a date within 5 years" in response.content.decode()
    with unscoped():
        assert not HiringRole.objects.filter(title="Far").exists()


def test_role_edit_changes_pools(recruiter_client, org, pool, recruiter_user, unscoped):
    other = PoolFactory(organization=org, owner=recruiter_user)
    role = HiringRoleFactory(organization=org)
    _link(role, pool)

    recruiter_client.post(
        url("role_edit", org, role_id=role.pk),
        {"title": role.title, "headcount": "1", "status": "open", "pools": [other.pk]},
    )

    with unscoped():
        assert list(HiringRole.objects.get(pk=role.pk).pools.all()) == [other]


def test_role_edit_keeps_links_to_pools_the_editor_cannot_see(
    admin_client, org, admin_user, recruiter_user, pool, unscoped
):
    private = PoolFactory(
        organization=org, owner=recruiter_user, name="Rex's shortlist", visibility="owner"
    )
    role = HiringRoleFactory(organization=org, title="Platform lead")
    _link(role, pool, private)

    response = admin_client.post(
        url("role_edit", org, role_id=role.pk),
        {"title": "Platform lead", "headcount": 1, "status": "planned", "pools": []},
    )

    assert response.status_code == 302
    with unscoped():
        assert set(RolePool.objects.filter(role=role).values_list("pool_id", flat=True)) == {
            private.pk
        }


def test_role_create_viewer_is_403(viewer_client, org):
    assert viewer_client.get(url("role_create", org)).status_code == 403


def test_role_delete(recruiter_client, org, unscoped):
    role = HiringRoleFactory(organization=org)

    response = recruiter_client.post(url("role_delete", org, role_id=role.pk))

    assert response.status_code == 302
    with unscoped():
        assert not HiringRole.objects.filter(pk=role.pk).exists()


def test_one_person_in_two_of_a_roles_pools_counts_once_as_active(
    org, recruiter_user, pool, stages, make_candidates, add, in_org
):
    second = PoolFactory(organization=org, owner=recruiter_user)
    (person,) = make_candidates(1)
    add(pool, [person])
    add(second, [person])
    role = HiringRoleFactory(organization=org, headcount=1)
    _link(role, pool)
    _link(role, second)
    with in_org():
        moved = PoolMembership.objects.get(pool=second)
        services.membership_move(membership=moved, to_stage=stages[1], actor=None)
        (row,) = selectors.role_list_rows(organization=org, user=recruiter_user)

    assert row.active == 1
    assert sorted(n for _name, _outcome, n in row.by_stage) == [1, 1]  # one in each stage
