"""One row of the candidate list, written in Python: a page shows 50 rows, and the template
language's cost per node, per variable and per filter (the profile link, two date formats and
`naturalday` on every row) was ~15 ms of each list page. The markup is what the template
wrote, whitespace aside; the view prepares the highlighted parts (`name_html`, `role_html`,
`skill_badges`…), which are already escaped. Every other value goes through `escape`."""

from django import template
from django.utils.safestring import SafeString, mark_safe

from candidates.models import Candidate
from crm.dates import PageClock, page_clock
from crm.html import escape, id_url

register = template.Library()
STATUS_LABELS = dict(Candidate.Status.choices)
SHOWN_SKILLS = 3
DETAIL_URL = "candidates.candidate_list.detail_url"


def _row(candidate, detail_url: str, can_write: bool, clock: PageClock) -> str:
    if candidate.last_contacted_at is None:
        contacted_html = '<span class="text-body-secondary">Never</span>\n'
    else:
        contacted = clock.local(candidate.last_contacted_at)
        contacted_html = (
            f'<time datetime="{contacted.isoformat()}"'
            f' title="{escape(clock.day_and_time(contacted))}">'
            f"\n{escape(clock.natural_day(contacted))}\n</time>\n"
        )
    parts = ["<tr>\n"]
    if can_write:
        # Ticked again when a bulk form came back with an error (the view sets `selected`).
        checked = " checked" if getattr(candidate, "selected", False) else ""
        parts.append(
            '<td class="select-col">\n<input type="checkbox" class="form-check-input"'
            f' name="ids" value="{candidate.pk}" form="bulk-form"{checked}'
            f' aria-label="Select {escape(candidate.full_name)}">\n</td>\n'
        )

    parts.append(
        '<td class="candidate-name-cell">\n'
        f'<a class="fw-semibold text-break" href="{escape(detail_url)}">'
        f"{escape(candidate.name_html)}</a>\n"
    )
    if candidate.headline:
        parts.append(
            '<div class="small text-body-secondary candidate-headline">'
            f"{escape(candidate.headline_html)}</div>\n"
        )
    if candidate.role_html:
        parts.append(f'<div class="small d-md-none">{escape(candidate.role_html)}</div>\n')
    # Phones have no "Last contacted" column: it is a line here.
    line = (
        "Never contacted" if candidate.last_contacted_at is None else f"Contacted {contacted_html}"
    )
    parts.append(f'<div class="small text-body-secondary d-md-none">{line}</div>\n')
    snippet = getattr(candidate, "resume_snippet_html", None)
    if snippet:
        parts.append(
            '<div class="small text-body-secondary resume-snippet">'
            '<i class="bi bi-file-earmark-text" aria-hidden="true"></i>'
            f'<span class="visually-hidden">Resume:</span> {escape(snippet)}</div>\n'
        )
    parts.append("</td>\n")

    parts.append('<td class="d-none d-md-table-cell small candidate-role-cell text-break">\n')
    if candidate.current_title:
        parts.append(f"<div>{escape(candidate.title_html)}</div>\n")
    if candidate.current_company:
        parts.append(f'<div class="text-body-secondary">{escape(candidate.company_html)}</div>\n')
    if candidate.city or candidate.country:
        comma = "," if candidate.city and candidate.country else ""
        parts.append(
            '<div class="text-body-secondary">\n<i class="bi bi-geo-alt" aria-hidden="true"></i>\n'
            f"{escape(candidate.city)}{comma}\n{escape(candidate.country)}\n</div>\n"
        )
    parts.append("</td>\n")

    parts.append('<td class="d-none d-lg-table-cell">\n<div class="skill-badges">\n')
    for skill, matched in candidate.skill_badges[:SHOWN_SKILLS]:
        css = "skill-matched" if matched else "text-bg-light border"
        # A long skill wraps inside its column (a badge does not wrap by default).
        parts.append(
            f'<span class="badge rounded-pill {css} text-wrap text-break mw-100 text-start">'
            f"{escape(skill)}</span>\n"
        )
    skills = candidate.skills or []
    if len(skills) > SHOWN_SKILLS:
        parts.append(
            '<span class="badge rounded-pill text-bg-secondary"'
            f' title="{escape(", ".join(skills))}">+{len(skills) - SHOWN_SKILLS}</span>\n'
        )
    parts.append("</div>\n</td>\n")

    if candidate.owner_id:
        owner = owner_cell = escape(candidate.owner.display_name)
    else:
        owner, owner_cell = "Unassigned", '<span class="text-body-secondary">Unassigned</span>'
    status = candidate.status
    parts.append(
        f'<td>\n<span class="badge status-badge status-{escape(status)}">'
        f"{escape(STATUS_LABELS.get(status, status))}</span>\n"
        '<div class="small text-body-secondary text-nowrap d-none d-md-block d-xxl-none mt-1">\n'
        '<i class="bi bi-person" aria-hidden="true"></i>\n'
        f'<span class="visually-hidden">Owner:</span>\n{owner}\n</div>\n</td>\n'
        f'<td class="d-none d-xxl-table-cell small">\n{owner_cell}\n</td>\n'
    )

    parts.append(f'<td class="d-none d-md-table-cell small text-nowrap">\n{contacted_html}')
    parts.append("</td>\n</tr>")
    return "".join(parts)


@register.simple_tag(takes_context=True)
def candidate_row(context, candidate, can_write) -> SafeString:
    """The list's <tr> for `candidate` (with its selection checkbox when `can_write`)."""
    detail_url = context.render_context.get(DETAIL_URL)
    if detail_url is None:
        # One `reverse` per page instead of per row.
        detail_url = context.render_context[DETAIL_URL] = id_url(
            "candidates:detail", context["organization"].slug
        )
    row = _row(candidate, detail_url(candidate.pk), can_write, page_clock(context))
    return mark_safe(row)  # noqa: S308 (values escaped above)
