"""Renaming a saved search: its owner only, from the list's saved searches."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django_scopes import scopes_disabled

from candidates.models import SavedSearch
from candidates.services.saved_searches import saved_search_rename
from crm.tests.markup import attributes, elements

pytestmark = pytest.mark.django_db


def _saved(org, owner, name="Berliners", query=None):
    with scopes_disabled():
        return SavedSearch.objects.create(
            organization=org, owner=owner, name=name, query=query or {"city": ["Berlin"]}
        )


def _rename_url(org, saved):
    return reverse("candidates:saved_search_rename", args=[org.slug, saved.pk])


def _name(saved) -> str:
    with scopes_disabled():
        saved.refresh_from_db()
    return saved.name


def test_saved_search_rename_happy_path(recruiter_client, org, recruiter_user):
    saved = _saved(org, recruiter_user)

    page = recruiter_client.get(_rename_url(org, saved))
    response = recruiter_client.post(
        _rename_url(org, saved), {"name": "  Berlin   people "}, follow=True
    )

    assert page.status_code == 200
    assert page.context["form"]["name"].value() == "Berliners"
    assert _name(saved) == "Berlin people"
    assert response.redirect_chain[-1][0].endswith("?city=Berlin")
    assert "Saved search “Berliners” renamed to “Berlin people”." in response.content.decode()
    with scopes_disabled():
        assert SavedSearch.objects.get(pk=saved.pk).query == {"city": ["Berlin"]}


def test_saved_search_rename_is_offered_in_the_list(recruiter_client, org, recruiter_user):
    saved = _saved(org, recruiter_user)

    page = recruiter_client.get(reverse("candidates:list", args=[org.slug])).content.decode()

    links = [attributes(e) for e in elements(page) if e.name == "a"]
    assert {
        "href": _rename_url(org, saved),
        "aria-label": "Rename saved search Berliners",
    }.items() <= next(link for link in links if link.get("href") == _rename_url(org, saved)).items()


def test_saved_search_rename_anonymous_is_sent_to_login(client, org, recruiter_user):
    saved = _saved(org, recruiter_user)

    response = client.post(_rename_url(org, saved), {"name": "Mine"})

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert _name(saved) == "Berliners"


def test_saved_search_rename_other_organisation_gets_404(outsider_client, org, recruiter_user):
    saved = _saved(org, recruiter_user)

    assert outsider_client.get(_rename_url(org, saved)).status_code == 404
    assert outsider_client.post(_rename_url(org, saved), {"name": "Mine"}).status_code == 404
    assert _name(saved) == "Berliners"


def test_saved_search_rename_is_only_for_its_owner(
    recruiter_client, viewer_client, org, admin_user
):
    saved = _saved(org, admin_user)

    assert recruiter_client.get(_rename_url(org, saved)).status_code == 404
    assert recruiter_client.post(_rename_url(org, saved), {"name": "Mine"}).status_code == 404
    assert viewer_client.post(_rename_url(org, saved), {"name": "Mine"}).status_code == 403
    assert _name(saved) == "Berliners"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "Give the search a name."),
        ("   ", "Give the search a name."),
        ("x" * 101, "Ensure this value has at most 100 characters (it has 101)."),
    ],
)
def test_saved_search_rename_invalid_name_re_renders_with_the_error(
    recruiter_client, org, recruiter_user, name, error
):
    saved = _saved(org, recruiter_user)

    response = recruiter_client.post(_rename_url(org, saved), {"name": name})

    assert response.status_code == 200
    assert response.context["form"].errors["name"] == [error]
    assert error in response.content.decode().replace("&quot;", '"')
    assert _name(saved) == "Berliners"


def test_saved_search_rename_to_another_of_ones_names_is_refused(
    recruiter_client, org, recruiter_user, admin_user
):
    saved = _saved(org, recruiter_user)
    _saved(org, recruiter_user, name="Parisians")
    _saved(org, admin_user, name="Londoners")

    taken = recruiter_client.post(_rename_url(org, saved), {"name": "Parisians"})
    someone_elses = recruiter_client.post(_rename_url(org, saved), {"name": "Londoners"})

    assert taken.status_code == 200
    assert taken.context["form"].errors["name"] == [
        "You already have a saved search called “Parisians”."
    ]
    assert someone_elses.status_code == 302
    assert _name(saved) == "Londoners"


def test_saved_search_rename_to_its_own_name_changes_nothing(org, recruiter_user, in_org):
    saved = _saved(org, recruiter_user)

    with in_org():
        assert saved_search_rename(saved_search=saved, name=" Berliners ") is False
        with pytest.raises(ValidationError) as error:
            saved_search_rename(saved_search=saved, name="y" * 101)

    assert error.value.message_dict == {"name": ["Keep the name to 100 characters or fewer."]}
    assert _name(saved) == "Berliners"
