"""The pipeline board in a real browser: drag a card to another column and it is saved; a
move the server refuses puts the card back with the reason; the stage select and its Move
button (the keyboard path) move a card too, the select alone never."""

import shutil
from contextlib import contextmanager

import pytest
from django.db import connection
from django_scopes import scope, scopes_disabled
from playwright.sync_api import expect, sync_playwright

from candidates.tests.factories import CandidateFactory
from pipelines.models import PoolMembership, Stage, StageChange
from pipelines.selectors import stages_default
from pipelines.services import pool_add_candidates
from pipelines.tests.factories import PoolFactory
from tests.test_browser import ARTIFACTS, CHROMIUM_ARGS, browser_recruiter, log_in


@pytest.fixture
def board(transactional_db, monkeypatch):
    """A recruiter's pool with three cards in its first stage."""
    organization, user = browser_recruiter(
        monkeypatch, name="Board Org", slug="board-org", email="drag.recruiter@example.com"
    )
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
    return {
        "organization": organization,
        "user": user,
        "pool": pool,
        "stages": stages,
        "card": card,
    }


@contextmanager
def board_page(live_server, board):
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Browser tests need Debian's Chromium on PATH as `chromium`.")
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on(
            "console",
            lambda message: (
                message.type in {"error", "warning"}
                and "422" not in message.text  # the refused move below answers 422 on purpose
                and problems.append(message.text)
            ),
        )
        page.on("pageerror", lambda error: problems.append(str(error)))
        try:
            log_in(page, live_server, board["user"].email)
            page.goto(f"{live_server.url}/o/{board['organization'].slug}/pools/{board['pool'].pk}/")
            expect(page.locator(f"#card-{board['card'].pk}")).to_be_visible()
            yield page
        finally:
            browser.close()
    assert problems == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_drag_card_to_another_column_persists(live_server, board):
    card, stages, user = board["card"], board["stages"], board["user"]
    target = stages[3]

    with board_page(live_server, board) as page:
        page.locator(f"#card-{card.pk} .drag-handle").drag_to(page.locator(f"#cards-{target.pk}"))

        moved = page.locator(f"#cards-{target.pk} #card-{card.pk}")
        expect(moved).to_have_attribute("data-stage-id", str(target.pk))
        expect(page.locator(f"#stage-count-{target.pk}")).to_have_text("1")
        expect(page.locator(f"#stage-count-{stages[0].pk}")).to_have_text("2")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "board.png"), full_page=True)

    with scopes_disabled():
        card.refresh_from_db()
        change = StageChange.objects.get(membership=card)
    assert card.stage_id == target.pk
    assert (change.from_stage_id, change.to_stage_id, change.changed_by_id) == (
        stages[0].pk,
        target.pk,
        user.pk,
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_refused_move_puts_the_card_back_with_the_reason(live_server, board):
    card, stages = board["card"], board["stages"]
    target = stages[2]

    with board_page(live_server, board) as page:
        # An admin archives the stage while the recruiter has the board open.
        with scopes_disabled():
            Stage.objects.filter(pk=target.pk).update(archived=True)
        # Playwright's loop gives this block its own database connection: close it, or it
        # outlives the test and blocks dropping the test database.
        connection.close()

        page.locator(f"#card-{card.pk} .drag-handle").drag_to(page.locator(f"#cards-{target.pk}"))

        expect(page.locator("#board-status")).to_contain_text(
            "That stage is no longer on this board"
        )
        expect(page.locator(f"#cards-{stages[0].pk} #card-{card.pk}")).to_be_visible()
        expect(page.locator(f"#stage-of-{card.pk}")).to_have_value(str(stages[0].pk))
        expect(page.locator(f"#stage-count-{stages[0].pk}")).to_have_text("3")

    with scopes_disabled():
        card.refresh_from_db()
        assert not StageChange.objects.filter(membership=card).exists()
    assert card.stage_id == stages[0].pk


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_stage_select_moves_the_card_without_dragging(live_server, board):
    card, stages = board["card"], board["stages"]
    target = stages[1]

    with board_page(live_server, board) as page:
        select = page.locator(f"#stage-of-{card.pk}")
        move = page.locator(f"#card-{card.pk} .card-move-button")
        expect(move).to_be_hidden()  # until the select differs from the card's stage
        select.select_option(str(target.pk))
        expect(move).to_be_visible()
        move.click()

        expect(page.locator(f"#cards-{target.pk} #card-{card.pk}")).to_be_visible()
        expect(page.locator(f"#stage-count-{target.pk}")).to_have_text("1")
        expect(page.locator(f"#card-{card.pk} .card-move-button")).to_be_hidden()

    with scopes_disabled():
        card.refresh_from_db()
    assert card.stage_id == target.pk


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_arrow_key_on_the_stage_select_moves_nothing(live_server, board):
    """WCAG 3.2.2: changing the select is not a move; its Move button is."""
    card, stages = board["card"], board["stages"]

    with board_page(live_server, board) as page:
        select = page.locator(f"#stage-of-{card.pk}")
        select.focus()
        page.keyboard.press("ArrowDown")
        expect(select).to_have_value(str(stages[1].pk))
        page.keyboard.press("Tab")
        expect(page.locator(f"#card-{card.pk} .card-move-button")).to_be_focused()
        page.wait_for_timeout(500)  # time for a request, were one sent

        expect(page.locator(f"#cards-{stages[0].pk} #card-{card.pk}")).to_be_visible()
        expect(page.locator(f"#stage-count-{stages[0].pk}")).to_have_text("3")

    with scopes_disabled():
        card.refresh_from_db()
        assert not StageChange.objects.filter(membership=card).exists()
    assert card.stage_id == stages[0].pk


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_keeps_the_navbar_where_other_pages_have_it(live_server, board):
    """The board and the candidate list are wider than other pages; the navbar is not."""
    slug = board["organization"].slug

    with board_page(live_server, board) as page:
        positions = {"board": page.locator(".navbar-brand").bounding_box()["x"]}
        for name, path in [("candidates", "candidates/"), ("settings", "settings/members/")]:
            page.goto(f"{live_server.url}/o/{slug}/{path}")
            positions[name] = page.locator(".navbar-brand").bounding_box()["x"]

    assert positions == dict.fromkeys(positions, positions["settings"])


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_search_on_a_phone_shows_its_whole_placeholder(live_server, board):
    with board_page(live_server, board) as page:
        page.set_viewport_size({"width": 375, "height": 800})
        search = page.locator("#id_q")
        room, needed = search.evaluate(
            """input => {
                const style = getComputedStyle(input);
                const context = document.createElement("canvas").getContext("2d");
                context.font = `${style.fontSize} ${style.fontFamily}`;
                const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
                return [input.clientWidth - padding, context.measureText(input.placeholder).width];
            }"""
        )

    assert room >= needed


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_stage_select_is_big_enough_to_tap_on_a_phone(live_server, board):
    card = board["card"]
    heights = {}

    with board_page(live_server, board) as page:
        for width in (1400, 390):
            page.set_viewport_size({"width": width, "height": 900})
            select = page.locator(f"#card-{card.pk} select[name=stage]")
            heights[width] = select.bounding_box()["height"]

    assert heights[390] >= 44  # under a finger
    assert heights[1400] < 36  # a laptop keeps the board dense
