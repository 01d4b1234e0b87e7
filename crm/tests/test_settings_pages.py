"""The settings pages share one h1, "Settings", in crm/settings_tabs.html; each page titles its
own content with an h2."""

import pytest

from crm.tests.markup import headings

pytestmark = pytest.mark.django_db


def test_every_settings_page_has_one_h1(admin_client, org):
    """Every page under the Settings entry, whichever app it lives in (SETTINGS_VIEWS)."""
    from django.urls import reverse

    from crm.navigation import SETTINGS_VIEWS
    from tests.test_isolation import OBJECT_KWARGS, tenant_routes

    pages = {}
    for route in tenant_routes():
        if route.name in SETTINGS_VIEWS:
            objects = {k: OBJECT_KWARGS[k](org) for k in route.kwargs if k != "org_slug"}
            url = reverse(route.name, kwargs={"org_slug": org.slug, **objects})
            response = admin_client.get(url)
            if response.status_code == 405:  # a POST-only action (inviting), not a page
                continue
            assert response.status_code == 200, url
            pages[route.name] = headings(response.content.decode(), 1)

    assert len(pages) >= len(SETTINGS_VIEWS) - 1
    assert all(h1s == ["Settings"] for h1s in pages.values()), pages


def test_organization_settings_titles_its_form_with_an_h2(admin_client, org):
    html = admin_client.get(f"/o/{org.slug}/settings/").content.decode()

    assert "Organisation settings" in headings(html, 2)


def test_organization_create_page_keeps_its_own_h1(admin_client):
    html = admin_client.get("/organizations/new/").content.decode()

    assert headings(html, 1) == ["Create your organisation"]


def _layout(html: str) -> dict:
    """What follows the settings tabs on a page: the row's and first column's classes, the
    h2s' classes and the padding of the card bodies that hold an h2."""
    from crm.tests.markup import attributes, elements

    main = next(element for element in elements(html) if element.name == "main")
    after_tabs = False
    row = None
    for child in main.children:
        if getattr(child, "name", None) == "ul" and "section-tabs" in attributes(child)["class"]:
            after_tabs = True
        elif after_tabs and getattr(child, "name", None) == "div":
            row = child
            break
    first_column = next(child for child in row.children if getattr(child, "name", None) == "div")

    def classes(element) -> frozenset[str]:
        return frozenset(attributes(element).get("class", "").split())

    return {
        "row": classes(row),
        "first column": classes(first_column),
        "h2s": {classes(element) for element in elements(row) if element.name == "h2"},
        "card bodies": {
            classes(element)
            for element in elements(row)
            if "card-body" in classes(element)
            and any(inner.name == "h2" for inner in elements(element))
        },
    }


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_settings_pages_share_one_layout(role, admin_client, viewer_client, org):
    """Switching tabs moves nothing: the layout crm/settings_tabs.html describes, on every page
    under the Settings entry that the role may open."""
    from django.urls import reverse

    from crm.navigation import SETTINGS_VIEWS
    from tests.test_isolation import OBJECT_KWARGS, tenant_routes

    client = admin_client if role == "admin" else viewer_client
    layouts = {}
    for route in tenant_routes():
        if route.name in SETTINGS_VIEWS:
            objects = {k: OBJECT_KWARGS[k](org) for k in route.kwargs if k != "org_slug"}
            response = client.get(reverse(route.name, kwargs={"org_slug": org.slug, **objects}))
            if response.status_code == 200:
                layouts[route.name] = _layout(response.content.decode())

    # Inviting is a POST-only action, not a page; a viewer may open Members only.
    assert len(layouts) == (len(SETTINGS_VIEWS) - 1 if role == "admin" else 1)
    expected = {
        "row": {"row", "g-4"},
        "first column": {"col-lg-8"},
        "h2s": {frozenset({"h5"})},
        "card bodies": {frozenset({"card-body", "p-4"})},
    }
    assert layouts == dict.fromkeys(layouts, expected)
