"""The pipelines panel of the organisation's home page: a recruiter's follow-ups due; for a
read-only viewer, who sets no follow-ups, the talent pools instead."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.tests.markup import headings
from pipelines.models import Pool
from pipelines.tests.factories import PoolFactory

pytestmark = pytest.mark.django_db


def _home(client, org) -> str:
    response = client.get(reverse("dashboard", args=[org.slug]))
    assert response.status_code == 200
    return response.content.decode()


def test_home_viewer_sees_the_pools_largest_first_not_follow_ups(
    viewer_client, org, pool, make_candidates, add, recruiter_user
):
    add(pool, make_candidates(3))
    small = PoolFactory(organization=org, owner=recruiter_user, name="Design bench")
    add(small, make_candidates(1))
    PoolFactory(
        organization=org,
        owner=recruiter_user,
        name="Rex's private list",
        visibility=Pool.Visibility.OWNER,
    )

    html = _home(viewer_client, org)

    assert "Talent pools" in headings(html, 2)
    assert "Your follow-ups due" not in headings(html, 2)
    assert "Follow-ups you set" not in html
    assert html.index("Backend engineers") < html.index("Design bench")
    assert "3 people" in html and "1 person" in html
    assert "Rex&#x27;s private list" not in html


def test_home_viewer_without_pools_gets_an_empty_state(viewer_client, org):
    html = _home(viewer_client, org)

    assert "No talent pools yet" in html


def test_home_recruiter_keeps_follow_ups_and_no_pools_panel(recruiter_client, org, pool):
    html = _home(recruiter_client, org)

    assert "Your follow-ups due" in headings(html, 2)
    assert "Talent pools" not in headings(html, 2)


def _home_queries(client, org) -> int:
    with CaptureQueriesContext(connection) as queries:
        _home(client, org)
    return len(queries)


def test_home_viewer_pools_query_count_does_not_grow_with_pools(
    viewer_client, org, pool, make_candidates, add, recruiter_user
):
    add(pool, make_candidates(1))
    one = _home_queries(viewer_client, org)
    for name in ("Second", "Third"):
        add(PoolFactory(organization=org, owner=recruiter_user, name=name), make_candidates(1))

    three = _home_queries(viewer_client, org)

    assert one == three
