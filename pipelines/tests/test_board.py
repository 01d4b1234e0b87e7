import threading
import time
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from candidates.models import Activity
from crm.tests.markup import attributes, elements, form_of, submit_buttons, text
from pipelines import selectors
from pipelines.models import PoolMembership, StageChange
from pipelines.services import membership_move, stage_archive

pytestmark = pytest.mark.django_db


def url(name, org, **kwargs):
    return reverse(f"pipelines:{name}", kwargs={"org_slug": org.slug, **kwargs})


@pytest.fixture
def cards(pool, make_candidates, add):
    add(pool, make_candidates(3))
    with scopes_disabled():
        return list(PoolMembership.objects.filter(pool=pool).order_by("pk"))


def test_board_shows_columns_counts_and_cards(viewer_client, org, pool, cards, stages):
    response = viewer_client.get(url("pool_board", org, pool_id=pool.pk))

    body = response.content.decode()
    assert response.status_code == 200
    assert [column.stage.name for column in response.context["columns"]] == [
        stage.name for stage in stages
    ]
    assert response.context["columns"][0].count == 3
    assert cards[0].candidate.full_name in body
    # Viewers get no move controls and no drag script.
    assert "card-move-form" not in body and "Sortable.min.js" not in body


def test_board_for_writers_has_stage_select_and_drag_script(recruiter_client, org, pool, cards):
    body = recruiter_client.get(url("pool_board", org, pool_id=pool.pk)).content.decode()

    assert f'id="stage-of-{cards[0].pk}"' in body
    assert "vendor/sortablejs/Sortable.min.js" in body


def test_board_stage_select_moves_only_with_its_button(recruiter_client, org, pool, cards):
    """An arrow key on a card's stage select must not move the card (WCAG 3.2.2): no
    autosubmit, a Move button in the select's own form, which posts the move."""
    card = cards[0]

    body = recruiter_client.get(url("pool_board", org, pool_id=pool.pk)).content.decode()

    form = form_of(body, f"stage-of-{card.pk}")
    select = next(element for element in elements(form) if element.name == "select")
    move = url("card_move", org, pool_id=pool.pk, pool_membership_id=card.pk)
    assert (attributes(form)["action"], attributes(form)["hx-post"]) == (move, move)
    assert "data-autosubmit" not in attributes(select)
    assert [text(button) for button in submit_buttons(form)] == [f"Move {card.candidate.full_name}"]
    assert "data-autosubmit" not in body


def test_board_cards_escape_their_values_and_select_their_own_stage(
    recruiter_client, org, pool, stages, make_candidates, add, recruiter_user, unscoped
):
    (candidate,) = make_candidates(
        1,
        first_name="<b>Zoë",
        last_name="O'Hara</b>",
        current_title="<script>alert(1)</script>",
        current_company="A & B",
        owner=recruiter_user,
    )
    add(pool, [candidate])
    with unscoped():
        card = PoolMembership.objects.get(pool=pool, candidate=candidate)
        membership_move(membership=card, to_stage=stages[2], actor=recruiter_user)

    body = recruiter_client.get(url("pool_board", org, pool_id=pool.pk)).content.decode()

    assert "<script>alert(1)" not in body and "<b>Zoë" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; · A &amp; B" in body
    assert 'aria-label="Select &lt;b&gt;Zoë O&#x27;Hara&lt;/b&gt;"' in body
    profile = reverse("candidates:detail", args=[org.slug, candidate.pk])
    move = url("card_move", org, pool_id=pool.pk, pool_membership_id=card.pk)
    assert f'href="{profile}"' in body and f'action="{move}" hx-post="{move}"' in body
    form = body.split(f'action="{move}"')[1].split("</form>")[0]
    assert 'name="csrfmiddlewaretoken"' in form
    options = body.split(f'id="stage-of-{card.pk}"')[1].split("</select>")[0]
    assert options.count(" selected") == 1
    assert f'<option value="{stages[2].pk}" selected>' in options
    initial = recruiter_user.display_name[:1].upper()
    assert (
        f'<span class="owner-initials" title="Owner: {recruiter_user.display_name}">{initial}'
        in body
    )


def test_board_filters_by_name(recruiter_client, org, pool, cards):
    name = cards[1].candidate.last_name

    response = recruiter_client.get(url("pool_board", org, pool_id=pool.pk), {"q": name})

    shown = [card.pk for column in response.context["columns"] for card in column.cards]
    assert cards[1].pk in shown
    assert response.context["filtered"] is True


def test_board_filter_button_looks_like_the_other_get_filters(recruiter_client, org, pool, cards):
    """A GET filter's button is quiet (outline-secondary, like the "Show" buttons of the other
    lists); outline-primary is for actions."""
    body = recruiter_client.get(url("pool_board", org, pool_id=pool.pk)).content.decode()

    buttons = submit_buttons(form_of(body, "id_q"))

    assert [(text(b), set(attributes(b)["class"].split())) for b in buttons] == [
        ("Filter", {"btn", "btn-sm", "btn-outline-secondary"})
    ]


def _board_queries(client, org, pool):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url("pool_board", org, pool_id=pool.pk))
    assert response.status_code == 200
    return len(queries)


def test_board_query_count_does_not_grow_with_cards(
    recruiter_client, org, pool, make_candidates, add
):
    add(pool, make_candidates(1))
    one = _board_queries(recruiter_client, org, pool)
    add(pool, make_candidates(2))

    three = _board_queries(recruiter_client, org, pool)

    assert one == three


def _time_in_stage(body: str) -> dict[int, str]:
    """Each card's "today" or "3d", by membership id."""
    shown = {}
    for card in elements(body):
        if card.name == "li" and "board-card" in (attributes(card).get("class") or ""):
            [label] = [
                text(element)
                for element in elements(card)
                if attributes(element).get("title") == "Time in this stage"
            ]
            shown[int(attributes(card)["data-card-id"])] = label.removesuffix(" in this stage")
    return shown


def test_board_counts_days_in_stage_on_the_organisations_calendar(
    recruiter_client, org, pool, cards, monkeypatch
):
    """At 08:00 in New York (13:00 UTC), a card that entered its stage at 23:30 the evening
    before has been there one day, not "today" (under 24 hours, and the same UTC day); one
    that entered at 09:00 two days before has been there two days, not one (under 72 hours)."""
    with scopes_disabled():
        org.time_zone = "America/New_York"  # UTC-5 in November
        org.save(update_fields=["time_zone"])
        entered = {
            cards[0].pk: datetime(2026, 11, 27, 5, 30, tzinfo=UTC),  # 00:30 on the 27th
            cards[1].pk: datetime(2026, 11, 27, 4, 30, tzinfo=UTC),  # 23:30 on the 26th
            cards[2].pk: datetime(2026, 11, 25, 14, 0, tzinfo=UTC),  # 09:00 on the 25th
        }
        for pk, moment in entered.items():
            PoolMembership.objects.filter(pk=pk).update(entered_stage_at=moment)
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 11, 27, 13, 0, tzinfo=UTC))

    body = recruiter_client.get(url("pool_board", org, pool_id=pool.pk)).content.decode()

    assert _time_in_stage(body) == {cards[0].pk: "today", cards[1].pk: "1d", cards[2].pk: "2d"}


def test_membership_days_in_stage_counts_calendar_days_in_the_current_time_zone(cards, monkeypatch):
    card = cards[0]
    card.entered_stage_at = datetime(2026, 11, 27, 4, 30, tzinfo=UTC)  # 23:30 in New York
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 11, 27, 13, 0, tzinfo=UTC))

    with timezone.override("America/New_York"):
        in_new_york = card.days_in_stage
    with timezone.override("UTC"):
        in_utc = card.days_in_stage

    assert (in_new_york, in_utc) == (1, 0)


def test_board_columns_paginate_with_a_cursor(
    recruiter_client, org, pool, make_candidates, add, stages, in_org
):
    add(pool, make_candidates(5))
    with in_org():
        columns = selectors.pool_board(pool=pool, size=2)
    first = columns[0]
    assert (first.count, len(first.cards)) == (5, 2)

    response = recruiter_client.get(
        url("board_column", org, pool_id=pool.pk, stage_id=stages[0].pk),
        {"after": first.next_cursor},
        HTTP_HX_REQUEST="true",
    )

    body = response.content.decode()
    assert response.status_code == 200
    # The remaining three cards (the page size is 20), none of those already shown.
    assert body.count('class="board-card card"') == 3
    assert all(f'id="card-{card.pk}"' not in body for card in first.cards)
    assert 'id="more-' in body


@pytest.mark.parametrize(
    "after", ["2024-02-30T00:00:00_1", "2024-13-01T00:00:00+00:00_1", "not-a-cursor", ""]
)
def test_board_column_with_an_invalid_cursor_is_an_empty_page_not_an_error(
    recruiter_client, org, pool, make_candidates, add, stages, after
):
    add(pool, make_candidates(3))

    response = recruiter_client.get(
        url("board_column", org, pool_id=pool.pk, stage_id=stages[0].pk),
        {"after": after},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert 'class="board-card card"' not in response.content.decode()


def test_parse_cursor_refuses_impossible_dates_and_reads_naive_ones_as_utc():
    assert selectors.parse_cursor("2024-02-30T00:00:00_1") is None
    assert selectors.parse_cursor("2024-02-28T00:00:00_x") is None
    moment, pk = selectors.parse_cursor("2024-02-28T10:00:00_7")
    assert (moment.isoformat(), pk) == ("2024-02-28T10:00:00+00:00", 7)


def test_board_column_of_a_stage_outside_the_pool_is_404(recruiter_client, org, pool, other_org):
    from pipelines.tests.factories import StageFactory

    archived = StageFactory(organization=org, name="Old", archived=True)  # not a column
    response = recruiter_client.get(
        url("board_column", org, pool_id=pool.pk, stage_id=archived.pk), {"after": "x"}
    )

    assert response.status_code == 404


# --- moving cards ---


def test_card_move_htmx_returns_card_and_counts(
    recruiter_client, org, pool, cards, stages, recruiter_user, unscoped
):
    card = cards[0]

    response = recruiter_client.post(
        url("card_move", org, pool_id=pool.pk, pool_membership_id=card.pk),
        {"stage": stages[2].pk},
        HTTP_HX_REQUEST="true",
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert f'id="card-{card.pk}"' in body and f'data-stage-id="{stages[2].pk}"' in body
    assert _count_badges(body) == {
        f"stage-count-{stages[0].pk}": ("2", "true"),
        f"stage-count-{stages[2].pk}": ("1", "true"),
    }
    with unscoped():
        card.refresh_from_db()
        change = StageChange.objects.get(membership=card)
        activity = Activity.objects.get(candidate_id=card.candidate_id, kind="stage_changed")
    assert card.stage_id == stages[2].pk
    assert (change.from_stage_id, change.to_stage_id, change.changed_by) == (
        stages[0].pk,
        stages[2].pk,
        recruiter_user,
    )
    assert activity.summary == "Backend engineers: New → Engaged"


def _count_badges(html):
    """The column count badges of a response: {id: (count, hx-swap-oob)}."""
    return {
        attributes(element)["id"]: (text(element), attributes(element).get("hx-swap-oob"))
        for element in elements(html)
        if attributes(element).get("id", "").startswith("stage-count-")
    }


def test_card_move_htmx_on_a_filtered_board_counts_what_the_board_shows_and_keeps_the_filter(
    recruiter_client, org, pool, stages, make_candidates, add, unscoped
):
    """The board shows only "Zelda" (one card in New); dragging her to Contacted updates the
    badges to what the filtered board shows — New 0, Contacted 1, not the whole pool's — and
    her card's next move still carries the filter."""
    zelda = make_candidates(1, first_name="Zelda", last_name="Quist")[0]
    add(pool, [zelda, *make_candidates(3, first_name="Ada", last_name="Lovelace")])
    with unscoped():
        card = PoolMembership.objects.get(pool=pool, candidate=zelda)
    board = recruiter_client.get(url("pool_board", org, pool_id=pool.pk), {"q": "Zelda"})
    assert [column.count for column in board.context["columns"]][:2] == [1, 0]

    response = recruiter_client.post(
        url("card_move", org, pool_id=pool.pk, pool_membership_id=card.pk),
        {"stage": stages[1].pk, "query": "q=Zelda"},
        HTTP_HX_REQUEST="true",
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert _count_badges(body) == {
        f"stage-count-{stages[0].pk}": ("0", "true"),
        f"stage-count-{stages[1].pk}": ("1", "true"),
    }
    query = [
        attributes(element).get("value")
        for element in elements(form_of(body, f"stage-of-{card.pk}"))
        if attributes(element).get("name") == "query"
    ]
    assert query == ["q=Zelda"]


def test_card_move_without_javascript_redirects_to_the_board(
    recruiter_client, org, pool, cards, stages, unscoped
):
    response = recruiter_client.post(
        url("card_move", org, pool_id=pool.pk, pool_membership_id=cards[0].pk),
        {"stage": stages[1].pk, "query": "q=x"},
    )

    assert response.status_code == 302
    assert response["Location"] == url("pool_board", org, pool_id=pool.pk) + "?q=x"
    with unscoped():
        assert PoolMembership.objects.get(pk=cards[0].pk).stage_id == stages[1].pk


def test_card_move_to_a_foreign_stage_fails_with_422(
    recruiter_client, org, other_org, pool, cards, unscoped
):
    from pipelines.tests.factories import StageFactory

    foreign = StageFactory(organization=other_org)

    response = recruiter_client.post(
        url("card_move", org, pool_id=pool.pk, pool_membership_id=cards[0].pk),
        {"stage": foreign.pk},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 422
    assert "no longer on this board" in response.content.decode()
    with unscoped():
        assert StageChange.objects.count() == 0


def test_card_move_without_a_stage_asks_for_one(recruiter_client, org, pool, cards):
    response = recruiter_client.post(
        url("card_move", org, pool_id=pool.pk, pool_membership_id=cards[0].pk),
        {},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 422
    assert response.content.decode() == "Choose one of this pool's stages."


def test_card_move_to_same_stage_records_nothing(
    recruiter_client, org, pool, cards, stages, unscoped
):
    recruiter_client.post(
        url("card_move", org, pool_id=pool.pk, pool_membership_id=cards[0].pk),
        {"stage": stages[0].pk},
    )

    with unscoped():
        assert StageChange.objects.count() == 0


def test_card_move_viewer_is_403(viewer_client, org, pool, cards, stages):
    response = viewer_client.post(
        url("card_move", org, pool_id=pool.pk, pool_membership_id=cards[0].pk),
        {"stage": stages[1].pk},
    )

    assert response.status_code == 403


def test_card_move_get_is_405(recruiter_client, org, pool, cards):
    response = recruiter_client.get(
        url("card_move", org, pool_id=pool.pk, pool_membership_id=cards[0].pk)
    )

    assert response.status_code == 405


def test_cards_move_bulk(recruiter_client, org, pool, cards, stages, unscoped):
    response = recruiter_client.post(
        url("cards_move_bulk", org, pool_id=pool.pk),
        {"stage": stages[4].pk, "membership": [cards[0].pk, cards[1].pk]},
    )

    assert response.status_code == 302
    with unscoped():
        moved = set(
            PoolMembership.objects.filter(stage_id=stages[4].pk).values_list("pk", flat=True)
        )
        assert StageChange.objects.count() == 2
        assert Activity.objects.filter(kind="stage_changed").count() == 2
    assert moved == {cards[0].pk, cards[1].pk}


def test_cards_move_bulk_without_selection_says_so(recruiter_client, org, pool, cards, stages):
    response = recruiter_client.post(
        url("cards_move_bulk", org, pool_id=pool.pk), {"stage": stages[1].pk}, follow=True
    )

    assert "Tick the cards you want to move, then choose their stage." in response.content.decode()


def test_cards_move_bulk_to_a_stage_gone_from_the_board_says_so(
    recruiter_client, org, pool, cards, stages, in_org
):
    with in_org():
        stage_archive(stage=stages[4], move_to=None, actor=None)

    response = recruiter_client.post(
        url("cards_move_bulk", org, pool_id=pool.pk),
        {"stage": stages[4].pk, "membership": [cards[0].pk]},
        follow=True,
    )

    assert "That stage is no longer on this board" in response.content.decode()


def test_card_move_of_a_card_removed_meanwhile_says_so_instead_of_failing(
    org, pool, cards, stages, recruiter_user, in_org
):
    card = cards[0]
    with in_org():
        stale = selectors.pool_membership_get(pool=pool, pool_membership_id=card.pk)
        PoolMembership.objects.filter(pk=card.pk).delete()

        with pytest.raises(ValidationError, match="removed this candidate from the pool"):
            membership_move(membership=stale, to_stage=stages[2], actor=recruiter_user)

    with scopes_disabled():
        assert not StageChange.objects.filter(candidate_id=card.candidate_id).exists()


@pytest.mark.django_db(transaction=True)
def test_membership_move_concurrent_moves_last_wins_and_both_are_recorded(
    org, pool, cards, stages, recruiter_user, admin_user
):
    """Two people drag the same card at the same moment, each on their own connection.
    The row lock serialises them: the second move starts from where the first left the card."""
    card = cards[0]
    first_locked = threading.Event()
    release_first = threading.Event()
    errors = []

    def move(to_stage, actor, hold=False):
        try:
            with scope(organization=org):
                if hold:
                    from django.db import transaction

                    with transaction.atomic():
                        PoolMembership.objects.select_for_update().get(pk=card.pk)
                        first_locked.set()
                        release_first.wait(5)
                        membership_move(membership=card, to_stage=to_stage, actor=actor)
                else:
                    first_locked.wait(5)
                    membership_move(membership=card, to_stage=to_stage, actor=actor)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    first = threading.Thread(target=move, args=(stages[1], recruiter_user, True))
    second = threading.Thread(target=move, args=(stages[3], admin_user))
    first.start()
    second.start()
    first_locked.wait(5)
    # Let the first move finish only once the second is really waiting on the row lock.
    second_waited = False
    deadline = time.monotonic() + 5
    while not second_waited and time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            second_waited = cursor.fetchone()[0] >= 1
        if not second_waited:
            time.sleep(0.02)
    release_first.set()
    first.join(10)
    second.join(10)

    assert errors == []
    assert second_waited
    with scopes_disabled():
        card.refresh_from_db()
        changes = list(
            StageChange.objects.filter(membership=card)
            .order_by("changed_at", "pk")
            .values_list("from_stage_id", "to_stage_id", "changed_by_id")
        )
    assert card.stage_id == stages[3].pk
    assert changes == [
        (stages[0].pk, stages[1].pk, recruiter_user.pk),
        (stages[1].pk, stages[3].pk, admin_user.pk),
    ]


def test_show_more_walks_a_column_to_its_end_without_repeating_cards(
    recruiter_client, org, pool, stages, make_candidates, add
):
    import html
    import re

    def more_url(body):
        found = re.search(r'hx-get="([^"]*columns[^"]*)"', body)
        return html.unescape(found.group(1)) if found else None

    add(pool, make_candidates(45))
    board = recruiter_client.get(url("pool_board", org, pool_id=pool.pk)).content.decode()
    seen = re.findall(r'id="card-(\d+)"', board)
    next_url, pages = more_url(board), 0
    while next_url and pages < 5:
        pages += 1
        body = recruiter_client.get(next_url, HTTP_HX_REQUEST="true").content.decode()
        seen += re.findall(r'id="card-(\d+)"', body)
        next_url = more_url(body)

    assert (len(seen), len(set(seen)), pages) == (45, 45, 2)
