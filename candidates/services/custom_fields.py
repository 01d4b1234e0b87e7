"""Organisation-defined custom fields: their definitions (admins manage them) and the validation
of the values stored in Candidate.custom_fields, keyed by CustomField.key."""

import datetime
import re
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.validators import DecimalValidator
from django.db import IntegrityError, transaction
from django.utils.text import slugify

from candidates.models import CustomField, number_text
from crm.models import Organization

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
# The size of a number custom field's value, for the profile form and for every other way in
# (an import, the API): 0 or more (notice periods, salaries, years, ratings: none is negative),
# 11 digits before the point, 4 after. Checked on the Decimal's digits
# and exponent, before it is turned into an int or a float: `1e5000` is a 5,001-digit integer
# (too long for str(), and minutes of work at `1e1000000`).
NUMBER_MAX_DIGITS = 15
NUMBER_DECIMAL_PLACES = 4
NUMBER_MIN = 0
_number_size = DecimalValidator(NUMBER_MAX_DIGITS, NUMBER_DECIMAL_PLACES)


def custom_fields_active(*, organization: Organization) -> list[CustomField]:
    """The organisation's live field definitions, in display order."""
    return list(CustomField.objects.filter(organization=organization, archived=False))


def _key_from_label(label: str) -> str:
    key = re.sub("_+", "_", slugify(label).replace("-", "_")).strip("_")[:50] or "field"
    if not key[0].isalpha():
        key = f"f_{key}"[:50]
    return key


def _clean_choices(choices) -> list[str]:
    if isinstance(choices, str):
        choices = choices.splitlines()
    seen: dict[str, None] = {}
    for choice in choices or []:
        choice = " ".join(str(choice).split())[:100]
        if choice:
            seen.setdefault(choice, None)
    return list(seen)


def _limit_clean(value, name: str) -> Decimal | None:
    """A number field's minimum or maximum: a number a value may be (0 or more, 15 digits, 4
    after the point), or None for no limit."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as error:
        raise ValidationError({name: "Enter a number."}) from error
    if not number.is_finite():
        raise ValidationError({name: "Enter a number."})
    try:
        _number_size(number)
    except ValidationError as error:
        raise ValidationError({name: error.messages}) from error
    if number < NUMBER_MIN:
        raise ValidationError({name: f"Enter {NUMBER_MIN} or more: values are never negative."})
    return number


def _limits_clean(*, field_type: str, min_value, max_value) -> tuple[Decimal | None, ...]:
    """(min_value, max_value) of a field of `field_type`: both None for anything but a number
    field; a maximum lower than the minimum is an error on the maximum."""
    if field_type != CustomField.FieldType.NUMBER:
        return None, None
    low, high = _limit_clean(min_value, "min_value"), _limit_clean(max_value, "max_value")
    if low is not None and high is not None and low > high:
        raise ValidationError(
            {"max_value": f"The maximum cannot be lower than the minimum ({number_text(low)})."}
        )
    return low, high


def custom_field_create(
    *,
    organization: Organization,
    label: str,
    field_type: str,
    choices=(),
    key: str = "",
    position: int | None = None,
    min_value=None,
    max_value=None,
) -> CustomField:
    """A new field on every candidate profile. `min_value` / `max_value` (number fields only,
    ignored for the others) limit the values candidates may have."""
    label = " ".join(label.split())
    key = (key or _key_from_label(label)).strip().lower()
    if not _KEY.match(key):
        raise ValidationError(
            {"key": "Use lowercase letters, digits and underscores, starting with a letter."}
        )
    if "__" in key:
        # Django reads "__" as a step into the value (custom_fields__a__b is {"a": {"b": …}}),
        # so such a key would filter and sort wrongly wherever a lookup names it.
        raise ValidationError(
            {"key": "Use single underscores only: two in a row (“__”) are not allowed."}
        )
    if field_type not in CustomField.FieldType.values:
        raise ValidationError({"field_type": "Choose a valid type."})
    choices = _clean_choices(choices)
    if field_type == CustomField.FieldType.CHOICE and not choices:
        raise ValidationError({"choices": "A choice field needs at least one choice."})
    if field_type != CustomField.FieldType.CHOICE:
        choices = []
    min_value, max_value = _limits_clean(
        field_type=field_type, min_value=min_value, max_value=max_value
    )
    if CustomField.objects.filter(organization=organization, key=key).exists():
        raise ValidationError({"key": f"A field with the key “{key}” already exists."})
    if position is None:
        position = CustomField.objects.filter(organization=organization).count()
    try:
        with transaction.atomic():
            return CustomField.objects.create(
                organization=organization,
                key=key,
                label=label,
                field_type=field_type,
                choices=choices,
                position=position,
                min_value=min_value,
                max_value=max_value,
            )
    except IntegrityError as error:
        raise ValidationError({"key": f"A field with the key “{key}” already exists."}) from error


def custom_field_update(
    *,
    field: CustomField,
    label: str,
    choices=(),
    position: int | None = None,
    min_value=None,
    max_value=None,
) -> CustomField:
    """Rename or reorder a field, or change its choices or its limits. The key and the type
    stay: the stored values of every candidate depend on them. New limits leave stored values
    as they are; a value outside them is refused the next time someone saves it (the profile
    form marks it, see forms.CandidateForm)."""
    limits = _limits_clean(field_type=field.field_type, min_value=min_value, max_value=max_value)
    field.label = " ".join(label.split())
    if field.field_type == CustomField.FieldType.CHOICE:
        choices = _clean_choices(choices)
        if not choices:
            raise ValidationError({"choices": "A choice field needs at least one choice."})
        field.choices = choices
    field.min_value, field.max_value = limits
    if position is not None:
        field.position = position
    field.save(update_fields=["label", "choices", "position", "min_value", "max_value"])
    return field


def custom_field_set_archived(*, field: CustomField, archived: bool) -> CustomField:
    """Archived fields disappear from forms and profiles; their stored values are kept."""
    field.archived = archived
    field.save(update_fields=["archived"])
    return field


def custom_field_value_clean(*, field: CustomField, value):
    """One value as stored in JSON (str, int/float, ISO date string), or None for empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    kind = field.field_type
    if kind == CustomField.FieldType.TEXT:
        return str(value).strip()[:1000]
    if kind == CustomField.FieldType.NUMBER:
        if isinstance(value, bool):
            raise ValidationError(f"{field.label}: enter a number.")
        try:
            number = Decimal(str(value).strip().replace(",", ""))
        except InvalidOperation as error:
            raise ValidationError(f"{field.label}: enter a number.") from error
        if not number.is_finite():
            raise ValidationError(f"{field.label}: enter a number.")
        try:
            _number_size(number)
        except ValidationError as error:
            raise ValidationError(f"{field.label}: {' '.join(error.messages)}") from error
        if number < NUMBER_MIN:
            raise ValidationError(f"{field.label}: enter a number of {NUMBER_MIN} or more.")
        if field.min_value is not None and number < field.min_value:
            raise ValidationError(f"{field.label}: at least {number_text(field.min_value)}.")
        if field.max_value is not None and number > field.max_value:
            raise ValidationError(f"{field.label}: at most {number_text(field.max_value)}.")
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == CustomField.FieldType.DATE:
        if isinstance(value, datetime.datetime):
            value = value.date()
        if isinstance(value, datetime.date):
            return value.isoformat()
        try:
            return datetime.date.fromisoformat(str(value).strip()).isoformat()
        except ValueError as error:
            raise ValidationError(f"{field.label}: enter a date as YYYY-MM-DD.") from error
    if kind == CustomField.FieldType.CHOICE:
        text = str(value).strip()
        for choice in field.choices:
            if choice.lower() == text.lower():
                return choice
        raise ValidationError(f"{field.label}: choose one of {', '.join(field.choices)}.")
    raise ValidationError(f"{field.label}: unknown field type.")


def custom_field_values_clean(
    *, organization: Organization, values: dict, current: dict | None = None
) -> dict:
    """Validate `values` ({key: value}) against the organisation's active field definitions and
    merge them into `current`. Empty values remove a key; values of archived fields are kept.
    Raises ValidationError({"custom_fields": [...]}) listing every problem."""
    fields = {field.key: field for field in custom_fields_active(organization=organization)}
    result = dict(current or {})
    errors = []
    for key, value in (values or {}).items():
        field = fields.get(key)
        if field is None:
            errors.append(f"Unknown custom field “{key}”.")
            continue
        try:
            cleaned = custom_field_value_clean(field=field, value=value)
        except ValidationError as error:
            errors.extend(error.messages)
            continue
        if cleaned is None:
            result.pop(key, None)
        else:
            result[key] = cleaned
    if errors:
        raise ValidationError({"custom_fields": errors})
    return result
