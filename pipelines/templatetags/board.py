"""One card of the pipeline board, written in Python: a board shows up to 20 cards in each
column, every card with its own move form listing every stage, and the template language's
cost per node and per variable, times 140 cards, was most of the board's time. The markup is
what pool_board.html's card partial wrote, whitespace aside.

What is the same for every card of a page (the stage options, the CSRF field, the URLs around
the ids) is made once per render and kept in the render context."""

import datetime
from collections.abc import Callable
from dataclasses import dataclass

from django import template
from django.template.defaulttags import CsrfTokenNode
from django.utils.safestring import SafeString, mark_safe

from crm.dates import page_clock
from crm.html import escape, id_url

register = template.Library()


@dataclass(frozen=True)
class _Page:
    profile_url: Callable[[int], str]
    move_url: Callable[[int], str]
    csrf_field: str
    query: str
    options: dict  # stage pk (None: none) → the <option>s with that stage selected
    zone: datetime.tzinfo  # the organisation's, whose calendar days "today" and "3d" count
    today: datetime.date


def _page(context) -> _Page:
    page = context.render_context.get(_Page)
    if page is None:
        slug, pool = context["organization"].slug, context["pool"]
        stages = [(stage.pk, escape(stage.name)) for stage in context.get("stages") or []]
        clock = page_clock(context)
        page = context.render_context[_Page] = _Page(
            profile_url=id_url("candidates:detail", slug),
            move_url=id_url("pipelines:card_move", slug, pool.pk),
            csrf_field=CsrfTokenNode().render(context),
            query=escape(context.get("query") or ""),
            options={
                selected: "\n".join(
                    f'<option value="{pk}"{" selected" if pk == selected else ""}>{name}</option>'
                    for pk, name in stages
                )
                for selected in [*(pk for pk, _name in stages), None]
            },
            zone=clock.zone,
            today=clock.local(clock.now).date(),
        )
    return page


def _days_in_stage(page: _Page, card) -> int:
    """Calendar days since the card entered its stage, on the organisation's calendar like
    every "today" of the app: a card moved at 23:50 is "1d" ten minutes later, not "today"
    until 23:50 the next day."""
    entered = card.entered_stage_at.astimezone(page.zone).date()
    return max(0, (page.today - entered).days)


def _move_form(page: _Page, card, name: str) -> str:
    move_url = page.move_url(card.pk)
    # A stage that is no longer on the board: nothing selected.
    options = page.options.get(card.stage_id, page.options[None])
    return (
        '<form class="card-move-form d-flex justify-content-end gap-1 ms-auto" method="post"'
        f' action="{move_url}" hx-post="{move_url}" hx-target="#card-{card.pk}"'
        ' hx-swap="outerHTML">\n'
        f'{page.csrf_field}\n<input type="hidden" name="query" value="{page.query}">\n'
        f'<label class="visually-hidden" for="stage-of-{card.pk}">Stage of {name}</label>\n'
        f'<select class="form-select form-select-sm" name="stage" id="stage-of-{card.pk}">\n'
        f"{options}\n</select>\n"
        # No submit on change (WCAG 3.2.2): an arrow key on the select must not move the card.
        # The button shows once the select differs from the card's stage (rapport.css).
        '<button class="btn btn-sm btn-outline-primary card-move-button" type="submit">'
        f'Move<span class="visually-hidden"> {name}</span></button>\n</form>\n'
    )


@register.simple_tag(takes_context=True)
def board_card(context, card) -> SafeString:
    """The board's <li> for the membership `card` (its candidate and owner selected)."""
    page = _page(context)
    can_write = context.get("can_write")
    candidate = card.candidate
    name = escape(candidate.full_name)
    parts = [
        f'<li class="board-card card" id="card-{card.pk}" data-card-id="{card.pk}"'
        f' data-stage-id="{card.stage_id}">\n<div class="card-body p-2">\n'
        '<div class="d-flex align-items-start gap-2">\n'
    ]
    if can_write:
        # The label is the box's tap area: 44px under a finger, the box alone under a mouse
        # (pipelines.css). The box keeps its name, which the label has no text to give.
        parts.append(
            '<label class="board-card-select">'
            '<input class="form-check-input" type="checkbox"'
            f' name="membership" value="{card.pk}" form="bulk-move"'
            f' aria-label="Select {name}"></label>\n'
        )
    parts.append(
        '<div class="min-w-0 flex-grow-1">\n'
        '<a class="fw-semibold d-block text-truncate text-decoration-none"'
        f' href="{page.profile_url(card.candidate_id)}">{name}</a>\n'
    )
    role = " · ".join(
        escape(part) for part in (candidate.current_title, candidate.current_company) if part
    )
    if role:
        parts.append(f'<div class="small text-body-secondary text-truncate">{role}</div>\n')
    parts.append("</div>\n")
    if can_write:
        parts.append(
            '<span class="drag-handle text-body-tertiary" aria-hidden="true"'
            ' title="Drag to another stage"><i class="bi bi-grip-vertical"></i></span>\n'
        )
    parts.append(
        '</div>\n<div class="d-flex flex-wrap align-items-center gap-2 small mt-2 card-meta">\n'
    )
    if candidate.engagement_score is not None:
        parts.append(
            '<span class="badge engagement-badge" title="Engagement score">'
            '<i class="bi bi-activity" aria-hidden="true"></i>'
            f' {candidate.engagement_score}<span class="visually-hidden"> engagement</span>'
            "</span>\n"
        )
    days = _days_in_stage(page, card)
    parts.append(
        '<span class="text-body-secondary text-nowrap" title="Time in this stage">'
        '<i class="bi bi-clock" aria-hidden="true"></i>\n'
        f"{'today' if days == 0 else f'{days}d'}\n"
        '<span class="visually-hidden">in this stage</span>\n</span>\n'
    )
    if card.source == "smart":
        parts.append(
            '<span class="text-body-secondary" title="Matches the pool\'s search">'
            '<i class="bi bi-magic" aria-hidden="true"></i>'
            '<span class="visually-hidden">Matches the pool\'s search</span></span>\n'
        )
    if candidate.owner_id:
        owner = escape(candidate.owner.display_name)
        initial = escape(candidate.owner.display_name[:1].upper())
        parts.append(
            f'<span class="owner-initials" title="Owner: {owner}">{initial}'
            f'<span class="visually-hidden">Owner: {owner}</span></span>\n'
        )
    if can_write:
        parts.append(_move_form(page, card, name))
    parts.append("</div>\n</div>\n</li>")
    return mark_safe("".join(parts))  # noqa: S308 (every value is escaped above)
