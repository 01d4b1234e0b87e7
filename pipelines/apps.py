from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = "Talent pools and pipelines"

    def ready(self) -> None:
        # Candidate merges carry pool memberships to the primary profile (a membership of the
        # secondary in a pool the primary is already in stays behind, and returns on undo).
        from candidates.services.merge import MERGE_MOVERS, MergeMover

        for mover in (
            MergeMover("pipelines.PoolMembership", "candidate", unique_with=("pool",)),
            MergeMover("pipelines.FollowUp", "candidate"),
        ):
            if mover not in MERGE_MOVERS:
                MERGE_MOVERS.append(mover)
