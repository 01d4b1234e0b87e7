"""The 404 and 403 pages offer a way back: the organisation's dashboard inside one, home
(which leads to the member's organisation, or to the sign-in page) anywhere else."""

import pytest
from django.urls import reverse

from crm.tests.markup import attributes, elements, text
from tests.factories import UserFactory


def _way_back(response) -> tuple[str, str]:
    """The (text, href) of the page's primary action."""
    [link] = [
        element
        for element in elements(response.content.decode())
        if element.name == "a" and "btn-primary" in attributes(element).get("class", "")
    ]
    return text(link), attributes(link)["href"]


def test_404_inside_an_organisation_leads_to_its_dashboard(org, recruiter_client):
    response = recruiter_client.get(f"/o/{org.slug}/candidates/999999/")

    assert response.status_code == 404
    assert _way_back(response) == ("Go to your dashboard", reverse("dashboard", args=[org.slug]))


def test_404_of_another_organisation_leads_home_not_to_it(org, outsider_client):
    response = outsider_client.get(f"/o/{org.slug}/")

    # The same page as for a missing organisation: nothing says that this one exists.
    assert response.status_code == 404
    assert _way_back(response) == ("Go to your dashboard", reverse("home"))
    assert org.slug not in response.content.decode()


def test_404_for_an_anonymous_visitor_leads_back_to_rapport(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert _way_back(response) == ("Back to Rapport", reverse("home"))


@pytest.mark.parametrize("client_fixture", ["recruiter_client", "viewer_client"])
def test_403_of_a_member_leads_to_the_dashboard(request, org, client_fixture):
    response = request.getfixturevalue(client_fixture).get(f"/o/{org.slug}/settings/")

    assert response.status_code == 403
    assert _way_back(response) == ("Go to your dashboard", reverse("dashboard", args=[org.slug]))


def test_403_outside_an_organisation_leads_back_to_rapport(client, db):
    client.force_login(UserFactory(email="recruiter@example.com"))

    response = client.get("/admin/login/")  # not staff

    assert response.status_code == 403
    assert _way_back(response) == ("Back to Rapport", reverse("home"))
