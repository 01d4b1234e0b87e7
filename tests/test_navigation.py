import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _active_nav(html: str) -> list[str]:
    """The active entries of the top navigation bar (not the page's own tabs)."""
    html = html[: html.index("</nav>")]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", label)).strip()
        for label in re.findall(r'<a class="nav-link active"[^>]*>(.*?)</a>', html, re.S)
    ]


@pytest.mark.parametrize(
    ("view_name", "expected"),
    [
        ("candidates:list", "Candidates"),
        ("candidates:fields", "Settings"),
        ("campaigns:email_settings", "Settings"),
        ("campaigns:list", "Campaigns"),
        ("pipelines:pool_list", "Talent pools"),
        ("members", "Settings"),
    ],
)
def test_the_navigation_marks_the_section_a_page_belongs_to(admin_client, org, view_name, expected):
    response = admin_client.get(reverse(view_name, args=[org.slug]))

    assert response.status_code == 200
    assert _active_nav(response.content.decode()) == [expected]
