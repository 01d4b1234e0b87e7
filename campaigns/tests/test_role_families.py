"""Role families: the defaults, add / rename / archive / restore (services and Settings → Role
families), each organisation's own list, and the data migration for existing organisations."""

import importlib

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scope, scopes_disabled

from campaigns.models import DefaultRoleFamily, RoleFamily
from campaigns.services import role_families as service

DEFAULT_KEYS = [
    "engineering",
    "data",
    "product",
    "design",
    "sales",
    "marketing",
    "operations",
    "people",
    "finance",
]


def _keys(org, **filters) -> list[str]:
    with scopes_disabled():
        return list(
            RoleFamily.objects.filter(organization=org, **filters).values_list("key", flat=True)
        )


# --- services ---


def test_role_families_start_with_the_defaults_once(org):
    with scope(organization=org):
        first = service.role_families_for(organization=org)
        service.role_families_ensure_defaults(organization=org)
    assert [family.key for family in first] == DEFAULT_KEYS
    assert [family.name for family in first][:2] == ["Engineering", "Data & analytics"]
    assert _keys(org) == DEFAULT_KEYS  # not twice


def test_role_family_create_gets_a_free_key_at_the_end(org):
    with scope(organization=org):
        family = service.role_family_create(organization=org, name="  Customer success ")
        again = service.role_family_create(organization=org, name="Customer-success")
    assert (family.key, family.name, family.position) == ("customer-success", "Customer success", 9)
    assert again.key == "customer-success-2"


def test_role_family_create_refuses_a_duplicate_name_whatever_the_case(org):
    with scope(organization=org), pytest.raises(ValidationError) as error:
        service.role_family_create(organization=org, name="ENGINEERING")
    assert error.value.message_dict == {"name": [service.DUPLICATE_NAME]}


def test_role_family_rename_keeps_the_key(org):
    with scope(organization=org):
        sales = RoleFamily.objects.get(
            pk=next(f.pk for f in service.role_families_for(organization=org) if f.key == "sales")
        )
        service.role_family_update(role_family=sales, name="Sales & partnerships")
        sales.refresh_from_db()
    assert (sales.key, sales.name) == ("sales", "Sales & partnerships")


def test_role_family_archive_hides_it_and_restore_brings_it_back(org):
    with scope(organization=org):
        design = next(f for f in service.role_families_for(organization=org) if f.key == "design")
        service.role_family_archive(role_family=design)
        active = [f.key for f in service.role_families_for(organization=org)]
        everything = [
            f.key for f in service.role_families_for(organization=org, include_archived=True)
        ]
        choices = dict(service.role_family_choices(organization=org, keep=["design"]))
        service.role_family_restore(role_family=design)
        restored = [f.key for f in service.role_families_for(organization=org)]
    assert "design" not in active and "design" in everything
    assert choices["design"] == "Design (archived)"
    assert restored == DEFAULT_KEYS


def test_role_families_are_each_organisations_own(org, other_org):
    with scope(organization=org):
        service.role_family_create(organization=org, name="Legal")
    with scope(organization=other_org):
        theirs = [f.key for f in service.role_families_for(organization=other_org)]
        # The same name is free in another organisation.
        service.role_family_create(organization=other_org, name="Legal")
    assert "legal" not in theirs
    assert _keys(org, key="legal") == ["legal"] and _keys(other_org, key="legal") == ["legal"]


def test_role_families_are_scoped(org):
    from django_scopes.exceptions import ScopeError

    with pytest.raises(ScopeError):
        list(RoleFamily.objects.all())


def test_role_families_data_migration_gives_existing_organisations_the_defaults(org, other_org):
    migration = importlib.import_module("campaigns.migrations.0012_role_families")
    with scope(organization=other_org):
        service.role_family_create(organization=other_org, name="Legal")

    with scopes_disabled():  # the app registry's models have the scoped managers
        migration.create_defaults(apps, None)

    assert _keys(org) == DEFAULT_KEYS
    assert _keys(other_org) == [*DEFAULT_KEYS, "legal"]  # already had some: left alone
    assert list(DefaultRoleFamily.choices) == migration.DEFAULT_ROLE_FAMILIES  # frozen copy


# --- Settings → Role families ---


def _list_url(org):
    return reverse("campaigns:role_family_list", args=[org.slug])


def test_role_families_page_lists_the_defaults_and_adds_one(admin_client, org):
    page = admin_client.get(_list_url(org))
    added = admin_client.post(_list_url(org), {"name": "Customer success"})
    assert page.status_code == 200
    assert "Data &amp; analytics" in page.content.decode()
    assert added.status_code == 302
    assert _keys(org) == [*DEFAULT_KEYS, "customer-success"]


def test_role_families_page_duplicate_name_rerenders_with_the_error(admin_client, org):
    admin_client.get(_list_url(org))
    response = admin_client.post(_list_url(org), {"name": "design"})
    assert response.status_code == 200
    assert service.DUPLICATE_NAME in response.content.decode()
    assert len(_keys(org)) == len(DEFAULT_KEYS)


def test_role_family_rename_page_keeps_the_key(admin_client, org):
    admin_client.get(_list_url(org))
    with scopes_disabled():
        family = RoleFamily.objects.get(organization=org, key="people")
    url = reverse("campaigns:role_family_edit", args=[org.slug, family.pk])
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"name": "People"})
    empty = admin_client.post(url, {"name": ""})
    family.refresh_from_db()
    assert response.status_code == 302
    assert (family.key, family.name) == ("people", "People")
    assert empty.status_code == 200 and "This field is required." in empty.content.decode()


def test_role_family_archive_and_restore_buttons(admin_client, org):
    admin_client.get(_list_url(org))
    with scopes_disabled():
        family = RoleFamily.objects.get(organization=org, key="finance")
    url = reverse("campaigns:role_family_archive", args=[org.slug, family.pk])
    archived = admin_client.post(url)
    page = admin_client.get(_list_url(org)).content.decode()
    family.refresh_from_db()
    assert archived.status_code == 302 and family.archived_at is not None
    assert "Restore" in page
    admin_client.post(url, {"restore": "1"})
    family.refresh_from_db()
    assert family.archived_at is None


def test_role_families_settings_tab_links_the_page(admin_client, org):
    page = admin_client.get(reverse("campaigns:topic_list", args=[org.slug])).content.decode()
    assert f'href="{_list_url(org)}">Role families</a>' in page


def test_role_families_pages_roles_and_tenancy(
    client, admin_client, recruiter_client, viewer_client, outsider_client, org
):
    with scope(organization=org):
        family = service.role_families_for(organization=org)[0]
    edit = reverse("campaigns:role_family_edit", args=[org.slug, family.pk])
    archive = reverse("campaigns:role_family_archive", args=[org.slug, family.pk])
    for url in (_list_url(org), edit):
        assert "/accounts/login/" in client.get(url)["Location"]
        assert recruiter_client.get(url).status_code == 403
        assert viewer_client.get(url).status_code == 403
        assert outsider_client.get(url).status_code == 404
    assert recruiter_client.post(archive).status_code == 403
    assert recruiter_client.post(_list_url(org), {"name": "Legal"}).status_code == 403
    assert outsider_client.post(archive).status_code == 404
    assert admin_client.get(archive).status_code == 405
    family.refresh_from_db()
    assert family.archived_at is None
    assert "legal" not in _keys(org)


@pytest.mark.parametrize("extra", [0, 2])
def test_role_families_page_query_count_does_not_grow(admin_client, org, extra):
    with scope(organization=org):
        for index in range(extra):
            service.role_family_create(organization=org, name=f"Extra {index}")
    admin_client.get(_list_url(org))
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(_list_url(org))
    assert response.status_code == 200
    assert len(queries) == 4  # session, memberships, defaults check, the families
