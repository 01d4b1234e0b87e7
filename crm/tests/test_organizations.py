import re

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from crm.models import Membership, Organization, Role
from crm.tests.markup import attributes, elements
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_organization_create_makes_creator_admin(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(
        reverse("organization_create"),
        {
            "name": "Initech Talent",
            "slug": "initech",
            "time_zone": "Europe/Berlin",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/o/initech/"
    with scopes_disabled():
        membership = Membership.objects.get(user=user)
    assert (membership.organization.name, membership.role) == ("Initech Talent", Role.ADMIN)
    # The sender starts as the creator; the Email settings tab changes it.
    assert membership.organization.sender_email == user.email


def test_a_new_organisation_has_its_email_topics_and_role_families_before_any_page_view():
    from campaigns.models import DefaultRoleFamily, DefaultTopic, RoleFamily, Topic
    from crm.services import organization_create

    organization = organization_create(user=UserFactory(), name="Fresh", slug="fresh-lists")

    with scopes_disabled():
        topics = list(Topic.objects.filter(organization=organization).values_list("key", flat=True))
        families = list(
            RoleFamily.objects.filter(organization=organization).values_list("key", flat=True)
        )
    assert topics == list(DefaultTopic.values)
    assert families == list(DefaultRoleFamily.values)


def test_organization_create_invalid_input_rerenders_with_errors(client):
    OrganizationFactory(slug="taken")
    client.force_login(UserFactory())

    response = client.post(
        reverse("organization_create"),
        {"name": "", "slug": "taken", "time_zone": "Mars/Olympus"},
    )

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"name", "slug", "time_zone"}
    assert Organization.objects.count() == 1


def test_organization_create_reserved_slug_is_rejected(client):
    client.force_login(UserFactory())
    response = client.post(
        reverse("organization_create"), {"name": "New", "slug": "new", "time_zone": "UTC"}
    )
    assert "reserved" in str(response.context["form"].errors["slug"])


@pytest.mark.parametrize(
    "slug", ["My Team", "my_team", "équipe", "-team", "team-", "Team!"], ids=repr
)
def test_organization_create_bad_url_name_is_explained_in_plain_words(client, slug):
    client.force_login(UserFactory())

    response = client.post(
        reverse("organization_create"), {"name": "Team", "slug": slug, "time_zone": "UTC"}
    )

    assert response.context["form"].errors["slug"] == [
        "Use only lowercase letters, numbers and hyphens, such as “acme-talent”: "
        "no spaces, accents or other signs, and no hyphen at the start or the end."
    ]


def test_organization_create_url_name_in_capitals_is_lowercased(client):
    client.force_login(UserFactory())

    client.post(
        reverse("organization_create"), {"name": "Team", "slug": "My-Team", "time_zone": "UTC"}
    )

    assert Organization.objects.get().slug == "my-team"


def test_organization_create_taken_or_long_url_name_says_so_plainly(client):
    OrganizationFactory(slug="taken")
    client.force_login(UserFactory())

    taken = client.post(
        reverse("organization_create"), {"name": "T", "slug": "taken", "time_zone": "UTC"}
    )
    long = client.post(
        reverse("organization_create"), {"name": "T", "slug": "a" * 51, "time_zone": "UTC"}
    )

    assert taken.context["form"].errors["slug"] == [
        "Another organisation already uses this URL name; choose another."
    ]
    assert long.context["form"].errors["slug"] == [
        "Keep the URL name to 50 characters or fewer (this one has 51)."
    ]


def test_home_sends_user_without_organization_to_create(client):
    client.force_login(UserFactory())
    assert client.get("/")["Location"] == reverse("organization_create")


def test_home_anonymous_goes_to_login(client):
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_home_single_membership_goes_to_dashboard(admin_client, org):
    assert admin_client.get("/")["Location"] == f"/o/{org.slug}/"


def test_organization_switch_between_memberships(client, org, other_org):
    user = UserFactory()
    MembershipFactory(user=user, organization=org, role=Role.ADMIN)
    MembershipFactory(user=user, organization=other_org, role=Role.VIEWER)
    client.force_login(user)

    chooser = client.get("/")
    first = client.get(f"/o/{org.slug}/")
    second = client.get(f"/o/{other_org.slug}/")

    assert chooser.status_code == 200
    assert [m.organization.slug for m in chooser.context["memberships"]] == ["acme", "globex"]
    assert first.context["organization"] == org
    assert second.context["organization"] == other_org
    assert second.context["membership"].role == Role.VIEWER
    # The switcher in the navbar lists both organisations on every page.
    assert b"Globex Hiring" in first.content and b"Acme Talent" in second.content


def test_dashboard_non_member_gets_same_404_as_missing_org(outsider_client, org):
    existing = outsider_client.get(f"/o/{org.slug}/")
    missing = outsider_client.get("/o/does-not-exist/")
    assert existing.status_code == missing.status_code == 404

    def without_csrf_token(response):
        return re.sub(
            rb'(X-CSRFToken": |csrfmiddlewaretoken" value=)"[^"]+"', b"", response.content
        )

    assert without_csrf_token(existing) == without_csrf_token(missing)


def test_dashboard_anonymous_redirects_to_login(client, org):
    response = client.get(f"/o/{org.slug}/")
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/o/{org.slug}/"


def test_settings_admin_can_update_organization(admin_client, org):
    response = admin_client.post(
        f"/o/{org.slug}/settings/",
        {
            "name": "Acme Careers",
            "slug": "acme",
            "time_zone": "Europe/Paris",
        },
    )
    org.refresh_from_db()
    assert response.status_code == 302
    assert (org.name, org.time_zone) == ("Acme Careers", "Europe/Paris")


def test_settings_url_name_taken_keeps_every_link_on_this_organisation(
    admin_client, org, other_org
):
    response = admin_client.post(
        f"/o/{org.slug}/settings/",
        {"name": "Acme Careers", "slug": other_org.slug, "time_zone": "Europe/Paris"},
    )
    assert response.status_code == 200
    assert "slug" in response.context["form"].errors
    links = [
        attributes(element)["href"]
        for element in elements(response.content.decode())
        if element.name == "a" and (attributes(element).get("href") or "").startswith("/o/")
    ]
    assert links
    assert not [link for link in links if link.startswith(f"/o/{other_org.slug}/")]
    org.refresh_from_db()
    assert (org.slug, org.name) == ("acme", "Acme Talent")


def test_settings_sender_and_postal_address_live_only_on_the_email_tab(admin_client, org):
    """The Organisation tab once offered the sender and postal address as "(optional)" while
    the Email tab required them: one home for them, the Email tab."""
    org.sender_name, org.sender_email = "Ada", "ada@acme.example"
    org.postal_address = "2 rue de la Paix\nParis"
    org.save()

    page = admin_client.get(f"/o/{org.slug}/settings/").content.decode()
    response = admin_client.post(
        f"/o/{org.slug}/settings/",
        {
            "name": "Acme Talent",
            "slug": "acme",
            "time_zone": "Europe/London",
            "sender_name": "Mallory",
            "sender_email": "mallory@evil.example",
            "postal_address": "",
        },
    )

    assert not {"sender_name", "sender_email", "postal_address"} & {
        attributes(element).get("name") for element in elements(page)
    }
    assert "Sender and postal address for campaign email are on the" in page
    email_tab = reverse("campaigns:email_settings", kwargs={"org_slug": org.slug})
    assert f'the <a href="{email_tab}">Email tab</a>' in page
    assert response.status_code == 302
    org.refresh_from_db()
    assert (org.sender_name, org.sender_email, org.postal_address) == (
        "Ada",
        "ada@acme.example",
        "2 rue de la Paix\nParis",
    )


@pytest.mark.parametrize(
    ("client_fixture", "explanation"),
    [
        ("viewer_client", "Viewers can read dashboards and profiles."),
        ("recruiter_client", "settings, members and deleting candidates are for admins."),
    ],
)
def test_settings_non_admin_gets_403(request, org, client_fixture, explanation):
    client = request.getfixturevalue(client_fixture)
    response = client.get(f"/o/{org.slug}/settings/")
    # The page says what this member's role allows.
    assert response.status_code == 403 and explanation in response.content.decode()
    assert client.post(f"/o/{org.slug}/settings/", {"name": "Hacked"}).status_code == 403
    org.refresh_from_db()
    assert org.name == "Acme Talent"


@pytest.mark.parametrize(
    ("client_name", "role"),
    [("admin_client", "Admin"), ("viewer_client", "Viewer (read-only)")],
)
def test_dashboard_greets_with_the_members_role(request, org, client_name, role):
    response = request.getfixturevalue(client_name).get(f"/o/{org.slug}/")
    assert f"Your role here: {role}." in response.content.decode()
