"""The pipeline board in a real browser: drag a card to another column and it is saved."""

import shutil
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect, sync_playwright

from candidates.tests.factories import CandidateFactory
from crm.models import Role
from pipelines.models import PoolMembership, StageChange
from pipelines.selectors import stages_default
from pipelines.services import pool_add_candidates
from pipelines.tests.factories import PoolFactory
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

ARTIFACTS = Path(django_settings.BASE_DIR) / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_drag_card_to_another_column_persists(live_server, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    organization = OrganizationFactory(name="Board Org", slug="board-org")
    user = UserFactory(email="drag.recruiter@example.com")
    MembershipFactory(organization=organization, user=user, role=Role.RECRUITER)
    candidates = [
        CandidateFactory(organization=organization, first_name=name, last_name="Tester")
        for name in ("Ada", "Grace", "Linus")
    ]
    pool = PoolFactory(organization=organization, owner=user, name="Drag pool")
    with scope(organization=organization):
        stages = stages_default(organization=organization)
        pool_add_candidates(pool=pool, candidate_ids=[c.pk for c in candidates], actor=user)
    with scopes_disabled():
        card = PoolMembership.objects.get(pool=pool, candidate=candidates[0])
    target = stages[3]

    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Browser tests need Debian's Chromium on PATH as `chromium`.")
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on(
            "console",
            lambda message: message.type in {"error", "warning"} and problems.append(message.text),
        )
        page.on("pageerror", lambda error: problems.append(str(error)))
        try:
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("input[name=login]", user.email)
            page.fill("input[name=password]", "correct horse battery")
            page.locator("form button[type=submit]").first.click()
            page.wait_for_load_state("networkidle")
            page.goto(f"{live_server.url}/o/{organization.slug}/pools/{pool.pk}/")
            expect(page.locator(f"#card-{card.pk}")).to_be_visible()

            page.locator(f"#card-{card.pk} .drag-handle").drag_to(
                page.locator(f"#cards-{target.pk}")
            )

            moved = page.locator(f"#cards-{target.pk} #card-{card.pk}")
            expect(moved).to_have_attribute("data-stage-id", str(target.pk))
            expect(page.locator(f"#stage-count-{target.pk}")).to_have_text("1")
            expect(page.locator(f"#stage-count-{stages[0].pk}")).to_have_text("2")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "board.png"), full_page=True)
        finally:
            browser.close()

    with scopes_disabled():
        card.refresh_from_db()
        change = StageChange.objects.get(membership=card)
    assert card.stage_id == target.pk
    assert (change.from_stage_id, change.to_stage_id, change.changed_by_id) == (
        stages[0].pk,
        target.pk,
        user.pk,
    )
    assert problems == []
