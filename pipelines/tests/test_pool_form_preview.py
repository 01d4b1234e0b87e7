"""The talent pool form previews the pool's card as the pool list will show it: drawn by the
server with the form's values (a new pool's defaults, the pool being edited, the values sent
back with an error), and in a browser kept in step with the fields as they change."""

import pytest
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from crm.tests.markup import attributes, elements, text
from pipelines.models import Pool
from pipelines.tests.factories import PoolFactory
from tests.test_browser import ARTIFACTS, browser_recruiter, chromium_page, log_in

LONG_DESCRIPTION = " ".join(["Engineers who build payment systems in Rust."] * 6)


def url(name, org, **kwargs):
    return reverse(f"pipelines:{name}", kwargs={"org_slug": org.slug, **kwargs})


def classes(element) -> list[str]:
    return sorted((attributes(element).get("class") or "").split())


def card_head(root) -> dict:
    """A pool card's icon, name and badges as a recruiter sees them (hidden badges left out),
    from the pool list's card or the form's preview."""
    icon = next(e for e in elements(root) if "pool-icon" in classes(e))
    names = [e for e in elements(root) if e.name == "a" or "pool-preview-name" in classes(e)]
    return {
        "icon": classes(icon),
        "glyph": classes(next(e for e in elements(icon) if e.name == "i")),
        "name": text(names[0]),
        "badges": [
            text(e)
            for e in elements(root)
            if "badge" in classes(e) and "hidden" not in attributes(e)
        ],
    }


def preview(html: str):
    return next(e for e in elements(html) if "pool-preview" in classes(e))


def preview_description(html: str) -> str | None:
    (part,) = [e for e in elements(preview(html)) if "pool-description" in classes(e)]
    return None if "hidden" in attributes(part) else text(part)


def test_pool_form_preview_shows_a_new_pools_defaults(recruiter_client, org, stages):
    html = recruiter_client.get(url("pool_create", org)).content.decode()

    assert card_head(preview(html)) == {
        "icon": ["pool-color-blue", "pool-icon"],
        "glyph": ["bi", "bi-collection"],
        "name": "Untitled pool",
        "badges": ["Static"],
    }
    assert preview_description(html) is None


def test_pool_form_preview_shows_the_pool_being_edited(
    recruiter_client, org, recruiter_user, stages
):
    pool = PoolFactory(
        organization=org,
        owner=recruiter_user,
        name="Rust people",
        description=LONG_DESCRIPTION,
        color="red",
        icon="rocket-takeoff",
        visibility=Pool.Visibility.OWNER,
    )

    html = recruiter_client.get(url("pool_edit", org, pool_id=pool.pk)).content.decode()

    assert card_head(preview(html)) == {
        "icon": ["pool-color-red", "pool-icon"],
        "glyph": ["bi", "bi-rocket-takeoff"],
        "name": "Rust people",
        "badges": ["Static", "Only you"],
    }
    # Cut as the pool list cuts it.
    assert preview_description(html) == " ".join(truncatechars(LONG_DESCRIPTION, 140).split())


def test_pool_form_preview_shows_the_values_sent_back_with_an_error(recruiter_client, org, stages):
    response = recruiter_client.post(
        url("pool_create", org),
        {
            "name": "Designers",
            "description": "Product and brand",
            "kind": "smart",  # without the saved search a smart pool needs
            "visibility": "organization",
            "color": "purple",
            "icon": "gem",
        },
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "A smart pool needs a saved search." in html
    assert card_head(preview(html)) == {
        "icon": ["pool-color-purple", "pool-icon"],
        "glyph": ["bi", "bi-gem"],
        "name": "Designers",
        "badges": ["Smart"],
    }
    assert preview_description(html) == "Product and brand"


def test_pool_form_preview_matches_the_pool_lists_card(
    recruiter_client, org, recruiter_user, stages
):
    pool = PoolFactory(
        organization=org,
        owner=recruiter_user,
        name="Data people",
        color="teal",
        icon="people",
        visibility=Pool.Visibility.OWNER,
    )

    form = recruiter_client.get(url("pool_edit", org, pool_id=pool.pk)).content.decode()
    listed = recruiter_client.get(url("pool_list", org)).content.decode()

    (card,) = [e for e in elements(listed) if e.name == "article" and "pool-card" in classes(e)]
    assert card_head(preview(form)) == card_head(card)


ICON_CLASSES = "icon => [icon.className, icon.querySelector('i').className]"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pool_form_preview_follows_the_fields(live_server, monkeypatch):
    organization, user = browser_recruiter(
        monkeypatch, name="Preview Org", slug="preview-org", email="preview.recruiter@example.com"
    )
    problems: list[str] = []

    with chromium_page(problems) as page:
        log_in(page, live_server, user.email)
        page.goto(f"{live_server.url}/o/{organization.slug}/pools/new/")
        card = page.locator(".pool-preview")
        icon = card.locator(".pool-icon")

        page.get_by_label("Name").fill("Platform engineers")
        page.get_by_label("Description").fill("Go and Rust people for the platform team.")
        page.get_by_label("Colour").select_option(label="Orange")
        page.get_by_label("Icon").select_option(label="Rocket")
        page.get_by_label("Smart — everyone matching a saved search").check()
        page.get_by_label("Only me").check()

        expect(icon).to_have_class("pool-icon pool-color-orange")
        expect(icon.locator("i")).to_have_class("bi bi-rocket-takeoff")
        expect(card.locator(".pool-preview-name")).to_have_text("Platform engineers")
        expect(card.locator(".pool-description")).to_have_text(
            "Go and Rust people for the platform team."
        )
        expect(card.locator(".badge:visible")).to_have_text(["Smart", "Only you"])

        page.get_by_label("Name").fill("")
        page.get_by_label("Description").fill("")
        page.get_by_label("Static — add and remove people yourself").check()
        page.get_by_label("Everyone in the organisation").check()
        expect(card.locator(".pool-preview-name")).to_have_text("Untitled pool")
        expect(card.locator(".pool-description")).to_be_hidden()
        expect(card.locator(".badge:visible")).to_have_text(["Static"])

        # Saved, the pool list shows the card the preview showed.
        page.get_by_label("Name").fill("Platform engineers")
        shown = icon.evaluate(ICON_CLASSES)
        ARTIFACTS.mkdir(exist_ok=True)
        card.screenshot(path=str(ARTIFACTS / "pool-form-preview.png"))
        page.get_by_role("button", name="Create pool").click()
        page.goto(f"{live_server.url}/o/{organization.slug}/pools/")
        listed = page.locator(".pool-card .pool-icon").evaluate(ICON_CLASSES)

    assert problems == []
    with scopes_disabled():
        pool = Pool.objects.get(organization=organization)
    assert (pool.name, pool.color, pool.icon) == ("Platform engineers", "orange", "rocket-takeoff")
    assert listed == shown == ["pool-icon pool-color-orange", "bi bi-rocket-takeoff"]
