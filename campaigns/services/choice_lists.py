"""The life cycle of a list each organisation edits for itself (email topics in services/topics.py,
role families in services/role_families.py): default entries on first use, a `key` fixed at
creation so what refers to it survives a rename, names unique whatever the case, archive and
restore. A `ChoiceList` says what tells one such list from another."""

from dataclasses import dataclass
from typing import Generic, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.text import slugify

from campaigns.models import OrganizationChoice

Entry = TypeVar("Entry", bound=OrganizationChoice)


@dataclass(frozen=True, kw_only=True)
class ChoiceList(Generic[Entry]):
    model: type[Entry]
    defaults: type[models.TextChoices]  # what an organisation without any entry starts with
    noun: str  # in messages: "There is already a {noun} with this name."
    fallback_key: str  # the key's stem when the name gives none (a name of only punctuation)
    has_description: bool = False
    # Why the last active entry may not be archived; empty when it may.
    keep_one_active: str = ""

    @property
    def duplicate_name(self) -> str:
        return f"There is already a {self.noun} with this name."


def choices_ensure_defaults(*, choice_list: ChoiceList, organization) -> None:
    """Give an organisation without any entry the default ones (idempotent)."""
    model = choice_list.model
    if model.objects.filter(organization=organization).exists():
        return
    model.objects.bulk_create(
        [
            model(organization=organization, key=value, name=label, position=index)
            for index, (value, label) in enumerate(choice_list.defaults.choices)
        ],
        ignore_conflicts=True,
    )


def choices_for(
    *, choice_list: ChoiceList[Entry], organization, include_archived: bool = False
) -> list[Entry]:
    choices_ensure_defaults(choice_list=choice_list, organization=organization)
    queryset = choice_list.model.objects.filter(organization=organization)
    if not include_archived:
        queryset = queryset.filter(archived_at__isnull=True)
    return list(queryset)


def _check_name(
    *, choice_list: ChoiceList, organization, name: str, exclude_pk: int | None = None
) -> None:
    others = choice_list.model.objects.filter(organization=organization, name__iexact=name.strip())
    if exclude_pk:
        others = others.exclude(pk=exclude_pk)
    if others.exists():
        raise ValidationError({"name": choice_list.duplicate_name})


def _free_key(*, choice_list: ChoiceList, organization, name: str) -> str:
    fallback = choice_list.fallback_key
    base = (slugify(name) or fallback)[:16].strip("-") or fallback
    taken = set(
        choice_list.model.objects.filter(
            organization=organization, key__startswith=base
        ).values_list("key", flat=True)
    )
    key, number = base, 2
    while key in taken:
        key, number = f"{base}-{number}", number + 1
    return key


@transaction.atomic
def choice_create(
    *, choice_list: ChoiceList[Entry], organization, name: str, description: str = ""
) -> Entry:
    """Add an entry at the end of the list; `description` only where the list has one."""
    choices_ensure_defaults(choice_list=choice_list, organization=organization)
    _check_name(choice_list=choice_list, organization=organization, name=name)
    model = choice_list.model
    last = model.objects.filter(organization=organization).order_by("-position").first()
    details = {"description": description.strip()} if choice_list.has_description else {}
    try:
        with transaction.atomic():
            return model.objects.create(
                organization=organization,
                key=_free_key(choice_list=choice_list, organization=organization, name=name),
                name=name.strip(),
                position=(last.position + 1) if last else 0,
                **details,
            )
    except IntegrityError as error:  # a concurrent create with the same name
        raise ValidationError({"name": choice_list.duplicate_name}) from error


def choice_update(
    *, choice_list: ChoiceList[Entry], entry: Entry, name: str, description: str = ""
) -> Entry:
    """Rename (and re-describe) an entry; its key stays, so what refers to it still does."""
    _check_name(
        choice_list=choice_list, organization=entry.organization, name=name, exclude_pk=entry.pk
    )
    entry.name = name.strip()
    fields = ["name"]
    if choice_list.has_description:
        entry.description = description.strip()
        fields.append("description")
    entry.save(update_fields=fields)
    return entry


def choice_archive(*, choice_list: ChoiceList[Entry], entry: Entry) -> Entry:
    """Hide it from new choices; the choices already made stay. Refused for the last active
    entry where the list must keep one (`ChoiceList.keep_one_active` says why)."""
    if entry.archived_at is not None:
        return entry
    if choice_list.keep_one_active:
        active = choice_list.model.objects.filter(
            organization=entry.organization, archived_at__isnull=True
        )
        if active.count() <= 1:
            raise ValidationError(choice_list.keep_one_active)
    entry.archived_at = timezone.now()
    entry.save(update_fields=["archived_at"])
    return entry


def choice_restore(*, entry: Entry) -> Entry:
    entry.archived_at = None
    entry.save(update_fields=["archived_at"])
    return entry
