"""Normalisation of candidate values, shared by forms, imports, the API and merges."""

import re
from urllib.parse import urlsplit

import phonenumbers
from django.core.exceptions import ValidationError

_SPACES = re.compile(r"\s+")
# The longest tag or skill (the database column's length).
TAG_MAX_LENGTH = 64


def normalize_email(value: str) -> str:
    return (value or "").strip().lower()


def normalize_tag(value: str, *, max_length: int | None = TAG_MAX_LENGTH) -> str:
    """'  Machine   Learning ' -> 'machine learning' (so "Python" and "python" are one), cut
    to `max_length` (None: not cut, for `tags_clean` to refuse a long one)."""
    return _SPACES.sub(" ", (value or "").strip()).lower()[:max_length]


def normalize_tags(values, *, max_length: int | None = TAG_MAX_LENGTH) -> list[str]:
    """Split comma-separated strings, normalise, drop empties and duplicates, keep order."""
    if isinstance(values, str):
        values = values.split(",")
    seen: dict[str, None] = {}
    for value in values or []:
        for part in str(value).split(","):
            tag = normalize_tag(part, max_length=max_length)
            if tag:
                seen.setdefault(tag, None)
    return list(seen)


def tags_clean(values) -> list[str]:
    """What people type as tags or skills (the profile, bulk actions, an import's tags and
    cells): `normalize_tags`, but a tag longer than TAG_MAX_LENGTH is an error, never silently
    cut (the import's cells come here when `importing.rows` finds one)."""
    tags = normalize_tags(values, max_length=None)
    for tag in tags:
        if len(tag) > TAG_MAX_LENGTH:
            raise ValidationError(
                f"“{tag[:24]}…” is longer than {TAG_MAX_LENGTH} characters: shorten it."
            )
    return tags


# Profile links that must point at one site (its subdomains too: www., uk., gist.):
# (domain, name, example).
PROFILE_URL_SITES = {
    "linkedin_url": ("linkedin.com", "LinkedIn", "https://www.linkedin.com/in/…"),
    "github_url": ("github.com", "GitHub", "https://github.com/…"),
}


def url_on_site(url: str, domain: str) -> bool:
    """Whether `url`'s host is `domain` or one of its subdomains."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return False
    return host == domain or host.endswith("." + domain)


def profile_url_error(name: str, url: str) -> str | None:
    """Why `url` cannot be the profile link `name` (None: it can): a LinkedIn link must be on
    linkedin.com, a GitHub link on github.com; a portfolio can be anywhere. Shared by the
    profile form and the import."""
    site = PROFILE_URL_SITES.get(name)
    if site is None or not url or url_on_site(url, site[0]):
        return None
    domain, label, example = site
    return f"Enter a {label} address (on {domain}), e.g. {example}"


def phone_display(phone: str) -> str:
    """'+4915123452709' -> '+49 1512 3452709': a stored E.164 number, grouped for reading
    (anything unreadable is shown as it is)."""
    try:
        number = phonenumbers.parse(phone)
    except phonenumbers.NumberParseException:
        return phone
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def normalize_phone(value: str, *, default_region: str | None = None) -> str:
    """Validate a phone number and return it in E.164 ('+447700900123'); '' stays ''."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as error:
        raise ValidationError(
            "Enter a valid phone number, with its country code (e.g. +44 7700 900123)."
        ) from error
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            "Enter a valid phone number, with its country code (e.g. +44 7700 900123)."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
