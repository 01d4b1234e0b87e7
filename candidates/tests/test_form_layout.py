"""How candidate forms read: narrow single-column forms on every page, and a label that says
when "Not now until" is needed instead of calling it optional."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.urls import reverse

from candidates.tests.factories import CandidateFactory
from crm.tests.markup import attributes, elements, text

pytestmark = pytest.mark.django_db

BASE_DIR = Path(settings.BASE_DIR)


def _label(page: str, field_id: str) -> str:
    return next(
        text(element)
        for element in elements(page)
        if element.name == "label" and attributes(element).get("for") == field_id
    )


# --- narrow forms ---


def test_form_narrow_is_styled_by_the_stylesheet_every_page_loads():
    """Merge pick and enroll load no pipelines.css: the rule lives in css/rapport.css."""
    rapport = Path(finders.find("css/rapport.css")).read_text()
    pipelines = Path(finders.find("pipelines/pipelines.css")).read_text()
    base = (BASE_DIR / "templates" / "base.html").read_text()

    assert re.search(r"^\.form-narrow \{ max-width: 40rem; \}$", rapport, re.M)
    assert ".form-narrow" not in pipelines
    assert "{% static 'css/rapport.css' %}" in base


def test_templates_with_form_narrow_extend_the_base_page():
    using = sorted(
        path
        for pattern in ("templates/**/*.html", "*/templates/**/*.html")
        for path in BASE_DIR.glob(pattern)
        if "node_modules" not in path.parts and "form-narrow" in path.read_text()
    )

    names = {path.name for path in using}
    assert {"merge_pick.html", "enroll.html", "pool_add.html"} <= names
    assert [p.name for p in using if '{% extends "base.html" %}' not in p.read_text()] == []


def test_merge_pick_page_is_a_narrow_card(recruiter_client, org):
    primary = CandidateFactory(organization=org)

    page = recruiter_client.get(
        reverse("candidates:merge", args=[org.slug, primary.pk])
    ).content.decode()

    cards = [e for e in elements(page) if "card" in (attributes(e).get("class") or "").split()]
    assert "form-narrow" in attributes(cards[0])["class"].split()


# --- "Not now until" ---


def test_candidate_form_not_now_until_says_when_it_is_needed(recruiter_client, org):
    page = recruiter_client.get(reverse("candidates:new", args=[org.slug])).content.decode()

    assert _label(page, "id_not_now_until") == "Not now until"
    assert _label(page, "id_current_title") == "Current title (optional)"
    helps = {attributes(e).get("id"): text(e) for e in elements(page) if e.name == "div"}
    assert helps["id_not_now_until_helptext"] == (
        "Needed when the status is “Not now”: when to get back in touch."
    )


def test_candidate_form_not_now_without_a_date_is_still_refused(recruiter_client, org):
    response = recruiter_client.post(
        reverse("candidates:new", args=[org.slug]),
        {"first_name": "Ada", "last_name": "Lovelace", "status": "not_now", "not_now_until": ""},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["not_now_until"] == [
        "Say until when the candidate does not want to hear from you."
    ]


def test_bulk_status_not_now_until_is_not_called_optional(recruiter_client, org):
    candidate = CandidateFactory(organization=org)

    page = recruiter_client.get(
        reverse("candidates:bulk", args=[org.slug]), {"action": "status", "ids": candidate.pk}
    ).content.decode()

    assert _label(page, "id_not_now_until") == "Not now until"
