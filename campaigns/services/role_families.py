"""Role families: the kinds of role candidates say they are interested in (preference centre)
and that campaigns target. Each organisation edits its own list (Settings → Role families); a
family's `key` is fixed at creation so candidates' interests and campaigns' targeting keep
pointing at it after a rename. The life cycle is services/choice_lists.py's, as for email
topics; unlike topics, the last family may be archived (a campaign need not target any)."""

from campaigns.models import DefaultRoleFamily, RoleFamily
from campaigns.services import choice_lists
from campaigns.services.choice_lists import ChoiceList

ROLE_FAMILIES = ChoiceList(
    model=RoleFamily, defaults=DefaultRoleFamily, noun="role family", fallback_key="family"
)
DUPLICATE_NAME = ROLE_FAMILIES.duplicate_name


def role_families_ensure_defaults(*, organization) -> None:
    """Give an organisation without any role family the default ones (idempotent)."""
    choice_lists.choices_ensure_defaults(choice_list=ROLE_FAMILIES, organization=organization)


def role_families_for(*, organization, include_archived: bool = False) -> list[RoleFamily]:
    return choice_lists.choices_for(
        choice_list=ROLE_FAMILIES, organization=organization, include_archived=include_archived
    )


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


def role_family_create(*, organization, name: str) -> RoleFamily:
    return choice_lists.choice_create(
        choice_list=ROLE_FAMILIES, organization=organization, name=name
    )


def role_family_update(*, role_family: RoleFamily, name: str) -> RoleFamily:
    return choice_lists.choice_update(choice_list=ROLE_FAMILIES, entry=role_family, name=name)


def role_family_archive(*, role_family: RoleFamily) -> RoleFamily:
    """Hide it from the preference centre and new campaigns. Candidates who chose it keep it,
    and campaigns that target it still do."""
    return choice_lists.choice_archive(choice_list=ROLE_FAMILIES, entry=role_family)


def role_family_restore(*, role_family: RoleFamily) -> RoleFamily:
    return choice_lists.choice_restore(entry=role_family)
