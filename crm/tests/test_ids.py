"""Ids that arrive as text: `crm.ids` is the one check, and the views that read ids from a query
string or a form answer a non-ASCII digit with a normal page, not a 500."""

import pytest
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from crm.ids import id_from, ids_from


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42", 42),
        (" 7 ", 7),
        (42, 42),
        ("²", None),
        ("٣", None),
        ("", None),
        (None, None),
        ("-1", None),
        ("1e3", None),
        ("1" * 12, int("1" * 12)),
        ("1" * 13, None),
    ],
)
def test_id_from(value, expected):
    assert id_from(value) == expected


def test_ids_from_keeps_the_ids_in_order():
    assert ids_from(["3", "²", "x", "1"]) == [3, 1]


@pytest.mark.django_db
def test_views_reading_ids_answer_a_superscript_digit(recruiter_client, org, recruiter_user):
    from candidates.tests.factories import CandidateFactory
    from pipelines.models import FollowUp, Pool

    candidate = CandidateFactory(organization=org)
    with scopes_disabled():
        pool = Pool.objects.create(organization=org, name="Backend")
        follow_up = FollowUp.objects.create(
            organization=org,
            candidate=candidate,
            owner=recruiter_user,
            due_on=timezone.localdate(),
            note="Call",
        )
    board = reverse("pipelines:pool_board", args=[org.slug, pool.pk])
    later = reverse("pipelines:follow_up_later", args=[org.slug, follow_up.pk])
    add = reverse("pipelines:pool_add", args=[org.slug])
    editing = reverse("candidates:list", args=[org.slug])

    assert recruiter_client.get(board, {"owner": "²"}).status_code == 200
    assert recruiter_client.post(later, {"days": "²"}).status_code == 302
    assert recruiter_client.get(add, {"candidate": ["²", str(candidate.pk)]}).status_code == 200
    assert recruiter_client.get(editing, {"editing": "²"}).status_code == 200
