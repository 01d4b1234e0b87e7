"""Normalisation of candidate values, shared by forms, imports, the API and merges."""

import re

import phonenumbers
from django.core.exceptions import ValidationError

_SPACES = re.compile(r"\s+")


def normalize_email(value: str) -> str:
    return (value or "").strip().lower()


def normalize_tag(value: str) -> str:
    """'  Machine   Learning ' -> 'machine learning' (so "Python" and "python" are one)."""
    return _SPACES.sub(" ", (value or "").strip()).lower()[:64]


def normalize_tags(values) -> list[str]:
    """Split comma-separated strings, normalise, drop empties and duplicates, keep order."""
    if isinstance(values, str):
        values = values.split(",")
    seen: dict[str, None] = {}
    for value in values or []:
        for part in str(value).split(","):
            tag = normalize_tag(part)
            if tag:
                seen.setdefault(tag, None)
    return list(seen)


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
