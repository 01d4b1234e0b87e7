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
