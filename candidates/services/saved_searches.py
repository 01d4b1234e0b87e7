"""Saved searches: a user's named candidate-list query strings (smart pools build on them)."""

from django.http import QueryDict

from candidates.filters import PAGING_PARAMS
from candidates.models import SavedSearch
from crm.models import Organization, User


def saved_search_query_from_params(params: QueryDict) -> dict[str, list[str]]:
    """The list page's filter parameters as a dict of lists, without paging or empty values."""
    query: dict[str, list[str]] = {}
    for key, values in params.lists():
        if key in PAGING_PARAMS:
            continue
        values = [value for value in values if value.strip()]
        if values:
            query[key] = values
    return query


def saved_search_querystring(saved_search: SavedSearch) -> str:
    params = QueryDict(mutable=True)
    for key, values in (saved_search.query or {}).items():
        params.setlist(key, values if isinstance(values, list) else [values])
    return params.urlencode()


def saved_search_create(
    *, organization: Organization, owner: User, name: str, query: dict[str, list[str]]
) -> tuple[SavedSearch, bool]:
    """Save the query under `name`; saving again under the same name replaces the query.
    Returns the saved search and whether it is new."""
    saved_search, created = SavedSearch.objects.update_or_create(
        organization=organization,
        owner=owner,
        name=" ".join(name.split())[:100],
        defaults={"query": query},
    )
    return saved_search, created


def saved_search_delete(*, saved_search: SavedSearch) -> None:
    saved_search.delete()
