"""Role families: the kinds of role candidates say they are interested in (preference centre)
and that campaigns target. Each organisation edits its own list (Settings → Role families); a
family's `key` is fixed at creation so candidates' interests and campaigns' targeting keep
pointing at it after a rename. The same life cycle as email topics (services/topics.py)."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from campaigns.models import DefaultRoleFamily, RoleFamily

DUPLICATE_NAME = "There is already a role family with this name."


def role_families_ensure_defaults(*, organization) -> None:
    """Give an organisation without any role family the default ones (idempotent)."""
    if RoleFamily.objects.filter(organization=organization).exists():
        return
    RoleFamily.objects.bulk_create(
        [
            RoleFamily(organization=organization, key=value, name=label, position=index)
            for index, (value, label) in enumerate(DefaultRoleFamily.choices)
        ],
        ignore_conflicts=True,
    )


def role_families_for(*, organization, include_archived: bool = False) -> list[RoleFamily]:
    role_families_ensure_defaults(organization=organization)
    queryset = RoleFamily.objects.filter(organization=organization)
    if not include_archived:
        queryset = queryset.filter(archived_at__isnull=True)
    return list(queryset)


def role_family_choices(*, organization, keep: list[str] = ()) -> list[tuple[str, str]]:
    """(key, name) of the active role families, plus archived ones among `keep` (what a
    campaign already targets stays a valid choice, marked archived)."""
    return [
        (family.key, f"{family.name} (archived)" if family.is_archived else family.name)
        for family in role_families_for(organization=organization, include_archived=True)
        if not family.is_archived or family.key in keep
    ]


def role_family_names(*, organization, keys: list[str]) -> list[str]:
    """The names of these families, in the organisation's order (unknown keys are left out)."""
    if not keys:
        return []
    return list(
        RoleFamily.objects.filter(organization=organization, key__in=list(keys)).values_list(
            "name", flat=True
        )
    )


def _check_name(*, organization, name: str, exclude_pk: int | None = None) -> None:
    others = RoleFamily.objects.filter(organization=organization, name__iexact=name.strip())
    if exclude_pk:
        others = others.exclude(pk=exclude_pk)
    if others.exists():
        raise ValidationError({"name": DUPLICATE_NAME})


def _free_key(*, organization, name: str) -> str:
    base = (slugify(name) or "family")[:16].strip("-") or "family"
    taken = set(
        RoleFamily.objects.filter(organization=organization, key__startswith=base).values_list(
            "key", flat=True
        )
    )
    key, number = base, 2
    while key in taken:
        key, number = f"{base}-{number}", number + 1
    return key


@transaction.atomic
def role_family_create(*, organization, name: str) -> RoleFamily:
    role_families_ensure_defaults(organization=organization)
    _check_name(organization=organization, name=name)
    last = RoleFamily.objects.filter(organization=organization).order_by("-position").first()
    try:
        with transaction.atomic():
            return RoleFamily.objects.create(
                organization=organization,
                key=_free_key(organization=organization, name=name),
                name=name.strip(),
                position=(last.position + 1) if last else 0,
            )
    except IntegrityError as error:  # a concurrent create with the same name
        raise ValidationError({"name": DUPLICATE_NAME}) from error


def role_family_update(*, role_family: RoleFamily, name: str) -> RoleFamily:
    _check_name(organization=role_family.organization, name=name, exclude_pk=role_family.pk)
    role_family.name = name.strip()
    role_family.save(update_fields=["name"])
    return role_family


def role_family_archive(*, role_family: RoleFamily) -> RoleFamily:
    """Hide it from the preference centre and new campaigns. Candidates who chose it keep it,
    and campaigns that target it still do."""
    if role_family.archived_at is None:
        role_family.archived_at = timezone.now()
        role_family.save(update_fields=["archived_at"])
    return role_family


def role_family_restore(*, role_family: RoleFamily) -> RoleFamily:
    role_family.archived_at = None
    role_family.save(update_fields=["archived_at"])
    return role_family
