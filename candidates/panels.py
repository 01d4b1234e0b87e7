"""Extension points of the candidate pages that other apps fill in their `AppConfig.ready()`,
so candidates never imports the apps built on it.

- Profile side panels (talent pools, follow-ups, sent emails…): template names rendered in
  order with the profile's context (`candidate`, `organization`, `membership`, `request`).
- Bulk destinations: actions of the list's bulk menu handled on another app's page.
- Saved-search editing panels: template names rendered in the list's "editing a saved search"
  banner with `editing` (the SavedSearch) and `editing_query` (the filters being tried), e.g.
  what the change would do to the smart pools defined by that search.
- Timeline redactions: entries that name something the viewer may not see elsewhere (a
  colleague's "Only me" talent pool) say something vaguer to that viewer.
"""

from collections.abc import Callable
from dataclasses import dataclass

PROFILE_PANELS: list[str] = [
    "candidates/includes/profile_attachments.html",
    "candidates/includes/profile_duplicates.html",
]


def profile_panel_register(template_name: str) -> None:
    if template_name not in PROFILE_PANELS:
        PROFILE_PANELS.append(template_name)


SAVED_SEARCH_EDITING_PANELS: list[str] = []


def saved_search_editing_panel_register(template_name: str) -> None:
    if template_name not in SAVED_SEARCH_EDITING_PANELS:
        SAVED_SEARCH_EDITING_PANELS.append(template_name)


@dataclass(frozen=True)
class BulkDestination:
    """A bulk action that another app performs on its own page ("Add to pool…"): the list's
    selection is handed over as `candidate=<id>` (repeated) or `query=<filter query string>`
    for "all matching"."""

    action: str
    label: str
    url_name: str  # reversed with org_slug only


BULK_DESTINATIONS: dict[str, BulkDestination] = {}


def bulk_destination_register(destination: BulkDestination) -> None:
    BULK_DESTINATIONS[destination.action] = destination


@dataclass(frozen=True)
class TimelineRedaction:
    """Timeline entries that name something a viewer may not see (a colleague's "Only me"
    talent pool, its stages). `condition(organization_id=…, user=…)` gives a boolean SQL
    expression over the candidate's Activity rows, true for the entries that viewer must not
    read as written; the timeline's one query computes it. `summary(activity)` is what such an
    entry says instead (from its `kind` and `summary`: `data` is not read)."""

    name: str
    condition: Callable[..., object]
    summary: Callable[[object], str]


TIMELINE_REDACTIONS: dict[str, TimelineRedaction] = {}


def timeline_redaction_register(redaction: TimelineRedaction) -> None:
    TIMELINE_REDACTIONS[redaction.name] = redaction
