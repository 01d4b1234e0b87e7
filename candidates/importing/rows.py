"""Turn one spreadsheet row into candidate values, with a reason for every invalid cell.

This runs for every row of files with a million rows, so each column gets its converter once
(`RowConverter.__init__`) and the per-row work is a loop over those converters with
precompiled patterns; the phone library is consulted only when a phone is present.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from django.core.exceptions import ValidationError

from candidates.importing.fields import CUSTOM_PREFIX, IGNORE
from candidates.models import Candidate, CustomField
from candidates.normalize import (
    PROFILE_URL_SITES,
    TAG_MAX_LENGTH,
    normalize_phone,
    normalize_tag,
    profile_url_error,
    tags_clean,
    url_on_site,
)
from candidates.services.custom_fields import custom_field_value_clean
from candidates.services.export import looks_like_formula

# Values written to the staging table, in its column order (see services.imports).
TEXT_LIMITS = {
    "first_name": 100,
    "last_name": 100,
    "city": 100,
    "country": 100,
    "headline": 255,
    "current_title": 200,
    "current_company": 200,
    "source_detail": 255,
}

EMAIL_RE = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
URL_RE = re.compile(
    r"^https?://(?:[^\s/?#@:]+\.)+[^\s/?#@:.]{2,63}(?::\d{1,5})?(?:[/?#]\S*)?$", re.IGNORECASE
)
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
_LIST_SPLIT = re.compile(r"[\s,;]+")

SENIORITY_ALIASES = {
    "jr": "junior",
    "entry": "junior",
    "entry level": "junior",
    "mid": "mid",
    "middle": "mid",
    "intermediate": "mid",
    "mid level": "mid",
    "sr": "senior",
    "staff": "lead",
    "head": "director",
    "vp": "executive",
    "c-level": "executive",
}
STATUS_ALIASES = {"dnc": "do_not_contact", "not now": "not_now", "do not contact": "do_not_contact"}


def _choice_lookup(choices, aliases: dict[str, str]) -> dict[str, str]:
    lookup = {}
    for value, label in choices:
        lookup[value.casefold()] = value
        lookup[str(label).casefold()] = value
        lookup[value.replace("_", " ").casefold()] = value
    for alias, value in aliases.items():
        lookup.setdefault(alias, value)
    return lookup


_SENIORITIES = _choice_lookup(Candidate.Seniority.choices, SENIORITY_ALIASES)
_STATUSES = _choice_lookup(Candidate.Status.choices, STATUS_ALIASES)


# The phone library compiles its metadata patterns through `re`'s small cache on every call;
# keeping them (a bounded set: one per pattern in the metadata) makes validation ~20 % cheaper.
# Older releases of phonenumbers lack the switch and keep re's behaviour.
getattr(phonenumbers, "enable_pattern_cache", lambda: None)()


@lru_cache(maxsize=65536)
def _phone(value: str, region: str) -> str:
    return normalize_phone(value, default_region=region or None)


# Tags and skills: a few hundred distinct words make up millions of cells, but the
# combinations in a cell rarely repeat, so each word is normalised once (bounded caches).
_CACHE_LIMIT = 65536
_tag_words: dict[str, str] = {}
_tag_cells: dict[str, tuple[str, ...]] = {}


def _tag_list(value: str) -> tuple[str, ...]:
    """Tags and skills separated by commas or semicolons: the same as
    `tags_clean(value.replace(";", ","))`, word by word from a cache. A tag longer than
    TAG_MAX_LENGTH is never cut: the cell goes to `tags_clean` itself, whose ValidationError
    refuses it as the profile and bulk forms do."""
    found = _tag_cells.get(value)
    if found is not None:
        return found
    words = _tag_words
    seen: dict[str, None] = {}
    for part in value.replace(";", ",").split(","):
        tag = words.get(part)
        if tag is None:
            tag = normalize_tag(part, max_length=None)
            if len(words) < _CACHE_LIMIT:
                words[part] = tag
        if len(tag) > TAG_MAX_LENGTH:
            return tuple(tags_clean(value.replace(";", ",")))  # raises ValidationError
        if tag:
            seen[tag] = None
    found = tuple(seen)
    if len(_tag_cells) < _CACHE_LIMIT:
        _tag_cells[value] = found
    return found


def clean_url(value: str) -> str | None:
    """A web address with a scheme ('linkedin.com/in/ada' gains https://), or None if invalid."""
    if not _SCHEME_RE.match(value) or value.lower().startswith(("www.", "localhost:")):
        value = "https://" + value
    if len(value) > 500 or not URL_RE.match(value):
        return None
    return value


def _url_setter(target: str) -> Callable:
    def setter(self, value: str, values: dict) -> str | None:
        url = clean_url(value)
        if url is None:
            return f"“{value}” is not a valid web address."
        if error := profile_url_error(target, url):
            return error
        values[target] = url
        return None

    return setter


@dataclass
class Options:
    """What the mapping screen decided, besides the columns."""

    duplicates: str = "update"  # or "fill" or "skip" (services.imports)
    tags: tuple[str, ...] = ()
    phone_region: str = ""
    # ISO date for "Not now" rows without one of their own: when they come back to active.
    not_now_default: str = ""


class RowConverter:
    """Converts rows of one file. `convert(cells)` → (values, errors).

    `values` holds the staging columns; `errors` maps a target (a field key, or "" for the row)
    to a reason. A row with any error is not imported.
    """

    def __init__(
        self,
        *,
        headers: list[str],
        mapping: list[str],
        options: Options,
        owners: dict[str, int],
        custom_fields: list[CustomField],
    ):
        self.width = len(headers)
        self.options = options
        self.owners = owners
        self.custom = {custom.key: custom for custom in custom_fields}
        self.columns: list[tuple[int, str, Callable]] = []
        for index, target in enumerate(mapping):
            if target == IGNORE:
                continue
            if target.startswith(CUSTOM_PREFIX):
                handler = self._custom_handler(self.custom[target[len(CUSTOM_PREFIX) :]])
            else:
                handler = getattr(self, f"_set_{target}", None) or self._text_handler(target)
            self.columns.append((index, target, handler))

    # --- per row ------------------------------------------------------------------------------

    def convert(self, cells: list[str]) -> tuple[dict, dict[str, str]]:
        values: dict = {"alternate_emails": [], "skills": [], "tags": [], "custom_fields": {}}
        errors: dict[str, str] = {}
        width = self.width
        if len(cells) > width and any(cell.strip() for cell in cells[width:]):
            errors[""] = (
                f"This row has {len(cells)} values but the header names {width} columns "
                "(check the quotes and delimiters)."
            )
        for index, target, handler in self.columns:
            if index >= len(cells):
                continue
            value = cells[index].strip()
            if not value:
                continue
            if value[0] == "'" and looks_like_formula(value[1:]):
                # The apostrophe `neutralize` put before a formula-looking value in a file the
                # app wrote (an export, the failed rows); drop it, and the spaces it protected.
                value = value[1:].strip()
            message = handler(value, values)
            if message:
                errors[target] = message
        self._finish(values, errors)
        return values, errors

    def _finish(self, values: dict, errors: dict[str, str]) -> None:
        full_name = values.pop("_full_name", "")
        if full_name and not values.get("first_name"):
            first, last = split_full_name(full_name)
            values["first_name"] = first[:100]
            values.setdefault("last_name", last[:100])
        location = values.pop("_location", None)
        if location:
            city, country = location
            values.setdefault("city", city[:100])
            if country:
                values.setdefault("country", country[:100])
        if not values.get("first_name") and "first_name" not in errors:
            if values.get("last_name"):
                errors["first_name"] = "The first name is missing."
            elif "full_name" not in errors:
                errors["first_name"] = "The name is missing."
        email = values.get("email", "")
        if values["alternate_emails"] and email in values["alternate_emails"]:
            values["alternate_emails"].remove(email)
        if self.options.tags:
            values["tags"] = list(dict.fromkeys([*values["tags"], *self.options.tags]))
        # "Not now" always carries the day the candidate comes back to active (the daily run
        # keys on it): the row's own date, or the default chosen on the mapping screen.
        if values.get("not_now_until"):
            status = values.get("status")
            if not status and "status" not in errors:
                values["status"] = Candidate.Status.NOT_NOW
            elif status and status != Candidate.Status.NOT_NOW:
                values.pop("not_now_until")
        elif values.get("status") == Candidate.Status.NOT_NOW and "not_now_until" not in errors:
            values["not_now_until"] = self.options.not_now_default or None

    # --- converters: return an error message, or None -----------------------------------------

    def _text_handler(self, target: str) -> Callable:
        limit = TEXT_LIMITS[target]

        def handler(value: str, values: dict) -> None:
            values[target] = value[:limit]

        return handler

    def _set_full_name(self, value: str, values: dict) -> None:
        values["_full_name"] = value

    def _set_location(self, value: str, values: dict) -> None:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if len(parts) >= 2:
            values["_location"] = (", ".join(parts[:-1]), parts[-1])
        elif parts:
            values["_location"] = (parts[0], "")

    def _set_email(self, value: str, values: dict) -> str | None:
        email = value.lower()
        if len(email) > 254 or not EMAIL_RE.match(email):
            return f"“{value}” is not a valid email address."
        values["email"] = email
        return None

    def _set_alternate_emails(self, value: str, values: dict) -> str | None:
        emails = []
        for part in _LIST_SPLIT.split(value.lower()):
            if not part:
                continue
            if len(part) > 254 or not EMAIL_RE.match(part):
                return f"“{part}” is not a valid email address."
            if part not in emails:
                emails.append(part)
        values["alternate_emails"] = emails
        return None

    def _set_phone(self, value: str, values: dict) -> str | None:
        try:
            values["phone"] = _phone(value, self.options.phone_region)
        except ValidationError:
            if self.options.phone_region:
                return f"“{value}” is not a valid phone number."
            return f"“{value}” is not a valid phone number (include the country code, e.g. +44)."
        return None

    _set_linkedin_url = _url_setter("linkedin_url")
    _set_github_url = _url_setter("github_url")
    _set_portfolio_url = _url_setter("portfolio_url")

    def _set_links(self, value: str, values: dict) -> str | None:
        for part in _LIST_SPLIT.split(value):
            if not part:
                continue
            url = clean_url(part)
            if url is None:
                return f"“{part}” is not a valid web address."
            if url_on_site(url, PROFILE_URL_SITES["linkedin_url"][0]):
                values.setdefault("linkedin_url", url)
            elif url_on_site(url, PROFILE_URL_SITES["github_url"][0]):
                values.setdefault("github_url", url)
            else:
                values.setdefault("portfolio_url", url)
        return None

    def _set_skills(self, value: str, values: dict) -> str | None:
        try:
            values["skills"] = list(_tag_list(value))
        except ValidationError as error:
            return " ".join(error.messages)
        return None

    def _set_tags(self, value: str, values: dict) -> str | None:
        try:
            values["tags"] = list(_tag_list(value))
        except ValidationError as error:
            return " ".join(error.messages)
        return None

    def _set_seniority(self, value: str, values: dict) -> str | None:
        found = _SENIORITIES.get(value.casefold().replace("-", " "))
        if found is None:
            found = _SENIORITIES.get(value.casefold())
        if found is None:
            labels = ", ".join(str(label) for _, label in Candidate.Seniority.choices)
            return f"“{value}” is not a seniority (use one of: {labels})."
        values["seniority"] = found
        return None

    def _set_status(self, value: str, values: dict) -> str | None:
        found = _STATUSES.get(value.casefold())
        if found is None:
            labels = ", ".join(str(label) for _, label in Candidate.Status.choices)
            return f"“{value}” is not a status (use one of: {labels})."
        values["status"] = found
        return None

    def _set_not_now_until(self, value: str, values: dict) -> str | None:
        day = parse_date(value)
        if day is None:
            return f"“{value}” is not a date (write it like 2026-03-31)."
        values["not_now_until"] = day
        return None

    def _set_owner_email(self, value: str, values: dict) -> str | None:
        owner_id = self.owners.get(value.lower())
        if owner_id is None:
            return f"No member of this organisation has the email “{value}”."
        values["owner_id"] = owner_id
        return None

    def _custom_handler(self, custom: CustomField) -> Callable:
        key, is_date = custom.key, custom.field_type == CustomField.FieldType.DATE

        def handler(value: str, values: dict) -> str | None:
            if is_date:
                value = parse_date(value) or value
            try:
                values["custom_fields"][key] = custom_field_value_clean(field=custom, value=value)
            except ValidationError as error:
                return " ".join(error.messages)
            return None

        return handler


def split_full_name(value: str) -> tuple[str, str]:
    """'Ada Lovelace' → ('Ada', 'Lovelace'); 'Lovelace, Ada' → ('Ada', 'Lovelace')."""
    if "," in value:
        last, _, first = value.partition(",")
        if first.strip():
            return first.strip(), last.strip()
    first, _, last = value.strip().partition(" ")
    return first, last.strip()


_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d %b %Y", "%d %B %Y")


def parse_date(value: str) -> str | None:
    """An ISO date string (how custom dates are stored), or None."""
    value = value.strip()[:10] if re.match(r"^\d{4}-\d{2}-\d{2}[ T]", value) else value.strip()
    for date_format in _DATE_FORMATS:
        try:
            return datetime.datetime.strptime(value, date_format).date().isoformat()
        except ValueError:
            continue
    return None
