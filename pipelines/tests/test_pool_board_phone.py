"""The pool board's card checkboxes and bulk move form under a finger: on a 390px phone a
checkbox takes taps 44px wide (WCAG 2.5.8 asks 24px at least), the toolbar's fields and
buttons are 44px tall, and the bulk move form waits for a ticked card, then stays in reach as
a bar along the bottom of the screen. A laptop keeps its one-row toolbar and small boxes."""

import pytest
from django_scopes import scopes_disabled
from playwright.sync_api import expect

from pipelines.models import PoolMembership
from pipelines.tests.test_browser_board import board, board_page  # noqa: F401 (the fixture)
from tests.test_browser import ARTIFACTS

FINGER = 44  # px: the tap area aimed for; WCAG 2.5.8's minimum is 24

# The element a tap at (x, y) of the viewport lands on, described by its id or name.
LANDS_ON = """([x, y]) => {
  const element = document.elementFromPoint(x, y);
  return element && (element.id || element.getAttribute("name") || element.tagName);
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
        box = checkbox.bounding_box()
        seen = checkbox.evaluate("box => [box.clientWidth, box.clientHeight]")
        landings = {page.evaluate(LANDS_ON, point) for point in tap_points(box)}
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

        # A tap near the edge of the box's tap area ticks it.
        checkbox.click(position={"x": 3, "y": 22})
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

    assert box["width"] >= FINGER and box["height"] >= FINGER
    assert seen[0] >= 24 and seen[1] >= 24  # the box drawn is WCAG's minimum on its own
    assert landings == {"membership"}  # the whole tap area is the checkbox's, nothing on top
    assert min(toolbar.values()) >= FINGER, toolbar
    assert abs(bar["y"] + bar["height"] - 844) <= 1 and bar["x"] == 0
    assert min(controls.values()) >= FINGER, controls
    with scopes_disabled():
        moved = set(PoolMembership.objects.filter(stage=target).values_list("pk", flat=True))
    assert moved == {first.pk, second.pk}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_board_bulk_move_keeps_its_laptop_row_and_clears_the_selection(
    live_server,
    board,  # noqa: F811
):
    first = board["card"]

    with board_page(live_server, board) as page:  # 1400px wide
        checkbox = page.locator(f"#card-{first.pk} input[name=membership]")
        box = checkbox.bounding_box()
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
    assert len(tops) == 1  # search, owner and bulk move on one row
