"""Saved searches: a user's named candidate-list query strings (smart pools build on them)."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import QueryDict

from candidates.filters import EDITING_PARAM, PAGING_PARAMS
from candidates.models import SavedSearch
from candidates.signals import saved_search_changed
from crm.models import Organization, User


def saved_search_query_from_params(params: QueryDict) -> dict[str, list[str]]:
    """The list page's filter parameters as a dict of lists, without paging or empty values,
    and without NUL characters (no filter has them, and PostgreSQL's JSON cannot hold them)."""
    query: dict[str, list[str]] = {}
    for key, values in params.lists():
        key = key.replace("\x00", "")
        if key in PAGING_PARAMS or key == EDITING_PARAM:
            continue
        values = [value.replace("\x00", "") for value in values]
        values = [value for value in values if value.strip()]
        if values:
            query.setdefault(key, []).extend(values)
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
    with transaction.atomic():
        saved_search, created = SavedSearch.objects.select_for_update().get_or_create(
            organization=organization,
            owner=owner,
            name=" ".join(name.split())[:100],
            defaults={"query": query},
        )
        if not created:
            saved_search_update(saved_search=saved_search, query=query)
    return saved_search, created


def saved_search_update(*, saved_search: SavedSearch, query: dict[str, list[str]]) -> bool:
    """Replace a saved search's filters; what is defined by it (smart pools) follows. Returns
    whether anything changed."""
    if saved_search.query == query:
        return False
    with transaction.atomic():
        saved_search.query = query
        saved_search.save(update_fields=["query"])
        saved_search_changed.send(sender=SavedSearch, saved_search=saved_search)
    return True


def saved_search_rename(*, saved_search: SavedSearch, name: str) -> bool:
    """Give a saved search another name, one its owner has not given another search. Smart
    pools and campaigns built on it follow (they refer to the search, not to its name).
    Returns whether the name changed."""
    name = " ".join(name.split())
    if not name:
        raise ValidationError({"name": "Give the search a name."})
    max_length = SavedSearch._meta.get_field("name").max_length
    if len(name) > max_length:
        raise ValidationError({"name": f"Keep the name to {max_length} characters or fewer."})
    if name == saved_search.name:
        return False
    taken = ValidationError({"name": f"You already have a saved search called “{name}”."})
    others = SavedSearch.objects.filter(
        organization_id=saved_search.organization_id, owner_id=saved_search.owner_id, name=name
    ).exclude(pk=saved_search.pk)
    if others.exists():
        raise taken
    old_name, saved_search.name = saved_search.name, name
    try:
        with transaction.atomic():
            saved_search.save(update_fields=["name"])
    except IntegrityError:  # the same name was saved in the meantime
        saved_search.name = old_name
        raise taken from None
    return True


def saved_search_describe(*, saved_search: SavedSearch) -> list[tuple[str, str]]:
    """The saved search's filters in words, e.g. [("Seniority", "Senior"), ("Skills", "python,
    go (all of them)")], in the order of the list page's filters."""
    from candidates.filters import CandidateFilterSet

    params = QueryDict(saved_search_querystring(saved_search))
    filterset = CandidateFilterSet(params, organization=saved_search.organization)
    form = filterset.form
    if not form.is_valid():
        return [("Filters", "some filters are no longer valid; edit the search to fix them")]
    described = []
    for name, value in form.cleaned_data.items():
        if name in {"sort", "skills_mode", "import_job"} or value in (None, "", []):
            continue
        if value is False and name != "has_resume":
            continue
        field = form.fields[name]
        label = str(field.label or name.replace("_", " ").capitalize())
        if name == "has_resume":
            text = "has a resume" if value else "no resume"
        elif name == "q":
            label, text = "Search", f"“{value}”"
        elif isinstance(value, list | tuple) and hasattr(field, "choices"):
            choices = dict(field.choices)
            text = ", ".join(str(choices.get(item, item)) for item in value)
        elif isinstance(value, list | tuple):
            text = ", ".join(str(item) for item in value)
            if name == "skills" and form.cleaned_data.get("skills_mode") == "all":
                text += " (all of them)"
        elif isinstance(value, slice):
            low, high = value.start, value.stop
            low = low.date() if hasattr(low, "date") else low
            high = high.date() if hasattr(high, "date") else high
            text = f"{low or '…'} – {high or '…'}"
        elif value is True:
            text = "yes"
        elif hasattr(field, "choices") and not isinstance(value, bool):
            text = str(dict(field.choices).get(value, value))
        else:
            text = str(value)
        described.append((label, text))
    return described


def saved_search_delete(*, saved_search: SavedSearch) -> None:
    saved_search.delete()


def saved_searches_hand_over_prepare(organization_id: int, user_id: int, successor_id: int) -> None:
    """Before a leaving member's saved searches become a colleague's (crm/handover.py): those
    whose name the colleague already uses get a free one ("Senior Python (2)"), for names are
    unique per person."""
    taken = set(
        SavedSearch.objects.filter(
            organization_id=organization_id, owner_id=successor_id
        ).values_list("name", flat=True)
    )
    theirs = SavedSearch.objects.filter(organization_id=organization_id, owner_id=user_id)
    for saved_search in theirs.filter(name__in=taken):
        number = 2
        while (name := f"{saved_search.name[:90]} ({number})") in taken:
            number += 1
        taken.add(name)
        SavedSearch.objects.filter(pk=saved_search.pk).update(name=name)
