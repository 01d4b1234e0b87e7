from django.apps import AppConfig


class CandidatesConfig(AppConfig):
    name = "candidates"
    verbose_name = "Candidates"

    def ready(self) -> None:
        from crm.handover import Handover, handover_register
        from crm.home import home_panel_register

        home_panel_register("candidates/includes/home_panel.html")
        from candidates.services.saved_searches import saved_searches_hand_over_prepare

        # A member who leaves hands their candidates to a colleague (crm/handover.py), and
        # their saved searches: the rules of smart pools and campaign audiences they made.
        handover_register(
            Handover("candidates.Candidate", "owner", "candidates they own", "candidate they own")
        )
        handover_register(
            Handover(
                "candidates.SavedSearch",
                "owner",
                "saved searches",
                "saved search",
                prepare=saved_searches_hand_over_prepare,
            )
        )
