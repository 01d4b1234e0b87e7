from django.apps import AppConfig


class CandidatesConfig(AppConfig):
    name = "candidates"
    verbose_name = "Candidates"

    def ready(self) -> None:
        from crm.home import home_panel_register

        home_panel_register("candidates/includes/home_panel.html")
