"""The campaign list comes in pages of 25, newest first, in the same few queries whatever the
page and however many campaigns there are."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_scopes import scopes_disabled

from campaigns.models import Campaign
from campaigns.selectors import CAMPAIGNS_PAGE_SIZE

# The user, the membership, the campaigns' count (for the pages) and one page of them.
QUERIES = 4


def _list_url(org) -> str:
    return reverse("campaigns:list", args=[org.slug])


def _campaigns(org, user, count: int) -> list[Campaign]:
    with scopes_disabled():
        return Campaign.objects.bulk_create(
            [
                Campaign(organization=org, name=f"Campaign {n:02d}", created_by=user, sender=user)
                for n in range(count)
            ]
        )


def _names(response) -> list[str]:
    return [campaign.name for campaign in response.context["campaigns"]]


def test_campaign_list_shows_25_a_page_newest_first(org, recruiter_user, recruiter_client):
    _campaigns(org, recruiter_user, CAMPAIGNS_PAGE_SIZE + 1)

    first = recruiter_client.get(_list_url(org))
    second = recruiter_client.get(_list_url(org), {"page": "2"})
    beyond = recruiter_client.get(_list_url(org), {"page": "nine"})

    assert CAMPAIGNS_PAGE_SIZE == 25
    assert _names(first) == [f"Campaign {n:02d}" for n in range(25, 0, -1)]
    assert 'href="?page=2">Older</a>' in first.content.decode()
    assert "Page 1 of 2" in first.content.decode()
    assert _names(second) == ["Campaign 00"]
    assert 'href="?page=1">Newer</a>' in second.content.decode()
    assert _names(beyond) == _names(first)  # not a number: the first page, not an error


def test_campaign_list_of_one_page_has_no_page_links(org, recruiter_user, recruiter_client):
    _campaigns(org, recruiter_user, 3)
    page = recruiter_client.get(_list_url(org)).content.decode()
    assert 'aria-label="Pages"' not in page


def _queries(client, org, page: str) -> int:
    client.get(_list_url(org), {"page": page})  # the session and caches warmed up
    with CaptureQueriesContext(connection) as queries:
        response = client.get(_list_url(org), {"page": page})
    assert response.status_code == 200
    return len(queries)


def test_campaign_list_query_count_does_not_grow(org, recruiter_user, recruiter_client):
    _campaigns(org, recruiter_user, 1)
    one = _queries(recruiter_client, org, "1")
    _campaigns(org, recruiter_user, 2)
    three = _queries(recruiter_client, org, "1")
    _campaigns(org, recruiter_user, CAMPAIGNS_PAGE_SIZE)
    second_page = _queries(recruiter_client, org, "2")
    assert (one, three, second_page) == (QUERIES, QUERIES, QUERIES)


def test_campaign_list_roles_and_tenancy(client, viewer_client, outsider_client, org):
    assert "/accounts/login/" in client.get(_list_url(org))["Location"]
    assert viewer_client.get(_list_url(org)).status_code == 200
    assert outsider_client.get(_list_url(org)).status_code == 404
