"""The settings pages share one h1, "Settings", in crm/settings_tabs.html; each page titles its
own content with an h2."""

import pytest

from crm.tests.markup import headings

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["settings/", "settings/members/"])
def test_settings_page_has_one_h1(admin_client, org, path):
    html = admin_client.get(f"/o/{org.slug}/{path}").content.decode()

    assert headings(html, 1) == ["Settings"]


def test_organization_settings_titles_its_form_with_an_h2(admin_client, org):
    html = admin_client.get(f"/o/{org.slug}/settings/").content.decode()

    assert "Organisation settings" in headings(html, 2)


def test_organization_create_page_keeps_its_own_h1(admin_client):
    html = admin_client.get("/organizations/new/").content.decode()

    assert headings(html, 1) == ["Create your organisation"]
