"""The database's own guarantees for candidates data: each constraint refuses what it must and
lets through what it must not refuse (the conditions of the partial ones)."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django_scopes import scopes_disabled

from candidates.models import Candidate, CustomField, DuplicateSuggestion, SavedSearch
from candidates.tests.factories import CandidateFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _refused(create) -> bool:
    try:
        with scopes_disabled(), transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


def test_candidate_email_is_unique_per_organisation_among_live_profiles(org, other_org):
    first = CandidateFactory(organization=org, email="ada@example.com")

    assert _refused(lambda: Candidate.objects.create(organization=org, email="ada@example.com"))
    # Another organisation, a profile without email, a merged-away profile: all allowed.
    assert not _refused(
        lambda: Candidate.objects.create(organization=other_org, email="ada@example.com")
    )
    assert not _refused(lambda: Candidate.objects.create(organization=org, email=""))
    assert not _refused(lambda: Candidate.objects.create(organization=org, email=""))
    assert not _refused(
        lambda: Candidate.objects.create(
            organization=org, email="ada@example.com", merged_into=first
        )
    )


def test_custom_field_key_and_saved_search_name_are_unique_per_scope(
    org, other_org, recruiter_user, admin_user
):
    with scopes_disabled():
        CustomField.objects.create(organization=org, key="visa", label="Visa")
        SavedSearch.objects.create(organization=org, owner=recruiter_user, name="Mine")

    assert _refused(lambda: CustomField.objects.create(organization=org, key="visa", label="V"))
    assert not _refused(
        lambda: CustomField.objects.create(organization=other_org, key="visa", label="V")
    )
    assert _refused(
        lambda: SavedSearch.objects.create(organization=org, owner=recruiter_user, name="Mine")
    )
    assert not _refused(
        lambda: SavedSearch.objects.create(organization=org, owner=admin_user, name="Mine")
    )


def test_custom_field_minimum_is_never_above_its_maximum(org):
    def field(key, low, high):
        return lambda: CustomField.objects.create(
            organization=org, key=key, label=key, field_type="number", min_value=low, max_value=high
        )

    assert _refused(field("a", Decimal("60.5"), Decimal("60")))
    # Equal limits, one limit, no limit: all allowed.
    assert not _refused(field("b", Decimal("60"), Decimal("60")))
    assert not _refused(field("c", Decimal("5"), None))
    assert not _refused(field("d", None, Decimal("5")))
    assert not _refused(field("e", None, None))


def test_duplicate_pairs_are_ordered_and_unique(org):
    first, second = sorted(
        (CandidateFactory(organization=org), CandidateFactory(organization=org)),
        key=lambda c: c.pk,
    )

    def pair(a, b):
        return lambda: DuplicateSuggestion.objects.create(
            organization=org, candidate_a=a, candidate_b=b, reason="email"
        )

    assert _refused(pair(second, first))  # a < b
    assert _refused(pair(first, first))
    assert not _refused(pair(first, second))
    assert _refused(pair(first, second))  # once per pair


def test_candidate_email_is_stored_lower_cased_whoever_writes_it(org):
    candidate = CandidateFactory(organization=org, email="ada@example.com")

    def store(email):
        return lambda: Candidate.objects.filter(pk=candidate.pk).update(email=email)

    # Mixed case would dodge candidate_email_unique_per_org ("Ada@…" next to "ada@…").
    assert _refused(store("Mixed@Example.com"))
    assert _refused(store("ÅSA.ÖBERG@EXAMPLE.COM"))
    # What candidates.normalize.normalize_email stores is always accepted.
    assert not _refused(store("åsa.öberg@example.com"))
    assert not _refused(store(""))


def _admin_add(client, org, email):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client.post(
        reverse("admin:candidates_candidate_add"),
        {
            "organization": org.pk,
            "first_name": "Ada",
            "email": email,
            "source": Candidate.Source.SOURCED,
            "status": Candidate.Status.ACTIVE,
            "custom_fields": "{}",
        },
    )


def test_candidate_admin_stores_the_email_as_the_services_do(org, client):
    response = _admin_add(client, org, " Ada.Lovelace@Example.COM ")

    assert response.status_code == 302
    with scopes_disabled():
        assert list(Candidate.objects.values_list("email", flat=True)) == [
            "ada.lovelace@example.com"
        ]


def test_candidate_admin_refuses_a_live_profiles_email_in_another_case(org, client):
    CandidateFactory(organization=org, email="ada@example.com")

    response = _admin_add(client, org, "ADA@example.com")

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    with scopes_disabled():
        assert list(Candidate.objects.values_list("email", flat=True)) == ["ada@example.com"]
