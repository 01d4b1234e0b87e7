"""The pool board's card checkboxes and bulk move form under a finger: on a 390px phone a
checkbox's label takes taps 44px wide (WCAG 2.5.8 asks 24px at least), the header's and the
toolbar's fields and buttons are 44px tall, and the bulk move form waits for a ticked card, then
stays in reach as a bar along the bottom of the screen, after the cards in the order of Tab. A
laptop keeps its one-row toolbar, small buttons and small boxes."""

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from pipelines.models import PoolMembership
from pipelines.tests.test_browser_board import board, board_page  # noqa: F401 (the fixture)
from tests.test_browser import ARTIFACTS

FINGER = 44  # px: the tap area aimed for; WCAG 2.5.8's minimum is 24

# The checkbox that a tap at (x, y) of the viewport ticks, as "name:value": the checkbox itself
# or its label; else what the tap lands on, by its id or tag.
TICKS = """([x, y]) => {
  const element = document.elementFromPoint(x, y);
  const label = element && element.closest("label");
  const box = element && element.matches("input") ? element : label && label.control;
  return box ? box.name + ":" + box.value : element && (element.id || element.tagName);
}"""


def tap_points(box: dict) -> list[tuple[float, float]]:
    """Points 2px inside the middle of each edge of a bounding box (its corners are rounded),
    and its centre."""
    left, top = box["x"] + 2, box["y"] + 2
    right, bottom = box["x"] + box["width"] - 2, box["y"] + box["height"] - 2
    middle = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    return [(middle[0], top), (right, middle[1]), (middle[0], bottom), (left, middle[1]), middle]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_checkboxes_and_bulk_move_fit_a_finger_on_a_phone(
    live_server,
    board,  # noqa: F811
):
    first, stages = board["card"], board["stages"]
    with scopes_disabled():
        second = PoolMembership.objects.exclude(pk=first.pk).filter(pool=board["pool"]).first()
    target = stages[2]

    with board_page(live_server, board) as page:
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        checkbox = page.locator(f"#card-{first.pk} input[name=membership]")
        toolbar = {
            name: page.locator(selector).bounding_box()["height"]
            for name, selector in [
                ("search", "#id_q"),
                ("owner", "#id_owner"),
                ("filter", ".board-toolbar form[role=search] button"),
            ]
        }
        bulk = page.locator("#bulk-move")
        expect(bulk).to_be_hidden()  # nothing ticked: the toolbar is only the search

        checkbox.click()
        page.locator(f"#card-{second.pk} input[name=membership]").click()
        expect(checkbox).to_be_checked()
        expect(bulk).to_be_visible()
        expect(page.locator("label[for=bulk-stage]")).to_have_text("Move 2 cards to")
        # The bar sits along the bottom of the screen, its controls a finger tall.
        page.mouse.wheel(0, 400)
        bar = bulk.bounding_box()
        controls = {
            name: bulk.locator(selector).bounding_box()["height"]
            for name, selector in [("stage", "#bulk-stage"), ("move", "button[type=submit]")]
        }
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "board-phone-ticked.png"))
        page.locator("#bulk-stage").select_option(str(target.pk))
        page.get_by_role("button", name="Move", exact=True).click()
        expect(page.locator(f"#cards-{target.pk} #card-{first.pk}")).to_be_visible()

    assert min(toolbar.values()) >= FINGER, toolbar
    assert abs(bar["y"] + bar["height"] - 844) <= 1 and bar["x"] == 0
    assert min(controls.values()) >= FINGER, controls
    with scopes_disabled():
        moved = set(PoolMembership.objects.filter(stage=target).values_list("pk", flat=True))
    assert moved == {first.pk, second.pk}


def offset(box: dict, origin: dict) -> tuple[int, int]:
    """Where a bounding box starts inside another, in whole px."""
    return round(box["x"] - origin["x"]), round(box["y"] - origin["y"])


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_checkbox_label_is_its_tap_area_on_a_phone(
    live_server,
    board,  # noqa: F811
):
    first = board["card"]
    name = first.candidate.full_name

    with board_page(live_server, board) as page:
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        card = page.locator(f"#card-{first.pk}")
        named = page.get_by_role("checkbox", name=f"Select {name}", exact=True)
        checkbox, label = card.locator(named), card.locator("label", has=named)
        expect(label).to_be_visible()
        area, drawn = label.bounding_box(), checkbox.bounding_box()
        where = {
            "box": offset(drawn, card.bounding_box()),
            "name": offset(card.get_by_role("link", name=name).bounding_box(), area),
        }
        landings = {page.evaluate(TICKS, point) for point in tap_points(area)}

        # Taps on the label around the box, not on the box, tick it and untick it.
        label.click(position={"x": 3, "y": 3})
        expect(checkbox).to_be_checked()
        expect(page.locator("label[for=bulk-stage]")).to_have_text("Move 1 card to")
        label.click(position={"x": area["width"] - 3, "y": area["height"] - 3})
        expect(checkbox).not_to_be_checked()

    assert area["width"] >= FINGER and area["height"] >= FINGER
    assert (round(drawn["width"]), round(drawn["height"])) == (24, 24)  # WCAG's minimum alone
    assert drawn["x"] - area["x"] > 3 and drawn["y"] - area["y"] > 3  # the taps missed the box
    assert landings == {f"membership:{first.pk}"}  # the whole area ticks it, nothing on top
    # The box and the name sit where the 44px tap area of the box itself had them: the label's
    # margins take its room from the card's padding and the gap to the name.
    assert where == {"box": (9, 9), "name": (area["width"], 10)}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_header_buttons_fit_a_finger_on_a_phone(
    live_server,
    board,  # noqa: F811
):
    with board_page(live_server, board) as page:
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        buttons = page.locator("main .page-header .btn")
        heights = {
            buttons.nth(index).inner_text().strip(): buttons.nth(index).bounding_box()["height"]
            for index in range(buttons.count())
        }

    assert list(heights) == ["Add candidates", "Settings"]
    assert min(heights.values()) >= FINGER, heights


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_bulk_move_bar_follows_the_cards_for_a_keyboard_on_a_phone(
    live_server,
    board,  # noqa: F811
):
    first = board["card"]

    with board_page(live_server, board) as page:
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        checkbox = page.locator(f"#card-{first.pk} input[name=membership]")
        status = page.locator("[data-bulk-status]")
        bulk = page.locator("#bulk-move")
        # The status line is heard when the first card is ticked only if it is there before:
        # not inside the form that a phone hides until then.
        rendered_before = status.evaluate("status => status.getClientRects().length > 0")
        after_board = page.evaluate(
            """() => Boolean(document.querySelector(".board").compareDocumentPosition(
                document.getElementById("bulk-move")) & Node.DOCUMENT_POSITION_FOLLOWING)"""
        )

        checkbox.focus()
        page.keyboard.press("Space")
        expect(checkbox).to_be_checked()
        expect(status).to_have_text("1 card selected")
        expect(bulk).to_be_visible()
        # From the last card's last control, Tab goes on to the bar.
        page.locator(".board-card select[name=stage]").last.focus()
        page.keyboard.press("Tab")
        expect(page.locator("#bulk-stage")).to_be_focused()
        bar = bulk.bounding_box()
        page.keyboard.press("Tab")
        expect(bulk.locator("button[type=submit]")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_role("button", name="Clear selection")).to_be_focused()
        # Clearing hides the bar, Clear with it: focus goes back to the card ticked last.
        page.keyboard.press("Enter")
        expect(checkbox).not_to_be_checked()
        expect(bulk).to_be_hidden()
        expect(status).to_have_text("No cards selected")
        expect(checkbox).to_be_focused()

    assert rendered_before and after_board
    assert abs(bar["y"] + bar["height"] - 844) <= 1  # still along the bottom of the screen


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_bulk_move_keeps_its_laptop_row_and_clears_the_selection(
    live_server,
    board,  # noqa: F811
):
    first = board["card"]

    with board_page(live_server, board) as page:  # 1400px wide
        card = page.locator(f"#card-{first.pk}")
        checkbox = card.locator("input[name=membership]")
        box = checkbox.bounding_box()
        where = {
            "box": offset(box, card.bounding_box()),
            "name": offset(card.locator("a").first.bounding_box(), card.bounding_box()),
        }
        ticked = page.evaluate(TICKS, (box["x"] - 2, box["y"] + 8))  # just left of the box
        buttons = page.locator("main .page-header .btn")
        header = [round(buttons.nth(i).bounding_box()["height"]) for i in range(buttons.count())]
        label = page.locator("label[for=bulk-stage]")
        clear = page.get_by_role("button", name="Clear selection")
        tops = {
            round(page.locator(selector).bounding_box()["y"])
            for selector in ("#id_q", "#id_owner", "#bulk-stage")
        }
        expect(page.locator("#bulk-move")).to_be_visible()
        expect(label).to_have_text("Move selected to")
        expect(clear).to_be_hidden()

        checkbox.check()
        expect(label).to_have_text("Move 1 card to")
        expect(page.locator("[data-bulk-status]")).to_have_text("1 card selected")
        expect(clear).to_be_visible()
        clear.click()
        expect(checkbox).not_to_be_checked()
        expect(label).to_have_text("Move selected to")
        expect(clear).to_be_hidden()

    assert (box["width"], box["height"]) == (16, 16)  # a mouse's box, as before
    assert where == {"box": (9, 13), "name": (33, 9)}  # the card's look, as before
    assert ticked != f"membership:{first.pk}"  # a mouse aims at the box alone
    assert header == [31, 31]  # Bootstrap's small buttons, as before
    assert len(tops) == 1  # search, owner and bulk move on one row
