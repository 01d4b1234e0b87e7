from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Merging two profiles carries the secondary's engagement events to the primary, so
        # the person's opens, clicks and replies count once, on the profile that stays (and
        # undo carries exactly those rows back). Events have no uniqueness per candidate.
        from candidates.services.merge import MERGE_MOVERS, MergeMover

        mover = MergeMover("analytics.EngagementEvent", "candidate")
        if mover not in MERGE_MOVERS:
            MERGE_MOVERS.append(mover)
