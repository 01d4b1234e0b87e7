from django.apps import AppConfig


class CandidatesConfig(AppConfig):
    name = "candidates"
    verbose_name = "Candidates"

    def ready(self) -> None:
        from crm.handover import Handover, handover_register
        from crm.home import home_panel_register

        home_panel_register("candidates/includes/home_panel.html")
        # A member who leaves hands their candidates to a colleague (crm/handover.py).
        handover_register(Handover("candidates.Candidate", "owner", "candidates they own"))
