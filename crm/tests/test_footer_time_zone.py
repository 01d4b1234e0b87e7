"""The footer of an organisation's pages names its time zone: every time on them is its wall
clock. Pages outside an organisation do not."""

from django_scopes import scopes_disabled


def test_organisation_pages_name_their_time_zone_in_the_footer(recruiter_client, org):
    with scopes_disabled():
        org.time_zone = "America/Los_Angeles"
        org.save(update_fields=["time_zone"])
    page = recruiter_client.get(f"/o/{org.slug}/").content.decode()
    assert '<span class="footer-time-zone">Times in America/Los Angeles</span>' in page


def test_pages_outside_an_organisation_name_no_time_zone(recruiter_client):
    page = recruiter_client.get("/organizations/new/").content.decode()
    assert "Signed in as" in page
    assert "footer-time-zone" not in page
