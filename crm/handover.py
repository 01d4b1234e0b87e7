"""What a member who leaves an organisation hands over: the rows of other apps that name them
as the person in charge (the candidates they own, their saved searches — the rules of smart
pools and audiences —, their pools and open follow-ups, the campaigns replies go to). Left
alone, those would belong to someone nobody can ask — their private pools would be seen by no
one, the rules they wrote could be changed by no one, and candidates' replies would go to a
former colleague's mailbox.

Each app declares its rows in its AppConfig.ready() (as merges declare what moves with a
profile, candidates/services/merge.py); crm.services.membership_remove hands them all to a
successor in the removal's transaction. Only the leaving member's rows in that organisation
move: they may be a member of others."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.apps import apps
from django.db.models import Q, QuerySet
from django_scopes import scopes_disabled


@dataclass(frozen=True)
class Handover:
    model: str  # "app_label.Model", with an `organization` foreign key
    field: str  # the foreign key to the user in charge
    label: str  # what the rows are, in the plural: "candidates they own"
    singular: str  # and for one of them: "candidate they own"
    only: Q | None = None  # which of their rows (e.g. follow-ups not done yet)
    # Called (organization_id, user_id, successor_id) before the rows move, e.g. to rename rows
    # whose name the successor already uses where names are unique per person.
    prepare: Callable[[int, int, int], None] | None = None

    def named(self, count: int) -> str:
        return self.singular if count == 1 else self.label

    def rows(self, *, organization_id: int, user_id: int) -> QuerySet:
        model = apps.get_model(self.model)
        rows = model.objects.filter(
            organization_id=organization_id, **{f"{self.field}_id": user_id}
        )
        return rows.filter(self.only) if self.only is not None else rows


HANDOVERS: list[Handover] = []


def handover_register(handover: Handover) -> None:
    if handover not in HANDOVERS:
        HANDOVERS.append(handover)


def handovers_count(*, organization_id: int, user_id: int) -> list[tuple[str, int]]:
    """(label, how many) of what the member is in charge of, for the removal page."""
    counts = []
    with scopes_disabled():
        for handover in HANDOVERS:
            count = handover.rows(organization_id=organization_id, user_id=user_id).count()
            counts.append((handover.named(count), count))
    return counts


def handovers_apply(
    *, organization_id: int, user_id: int, successor_id: int
) -> list[tuple[str, int]]:
    """Put `successor_id` in charge of everything the member was; (label, rows) moved."""
    moved = []
    with scopes_disabled():
        for handover in HANDOVERS:
            if handover.prepare is not None:
                handover.prepare(organization_id, user_id, successor_id)
            rows = handover.rows(organization_id=organization_id, user_id=user_id)
            count = rows.update(**{f"{handover.field}_id": successor_id})
            moved.append((handover.named(count), count))
    return moved
