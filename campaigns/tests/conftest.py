import pytest


@pytest.fixture(autouse=True)
def _campaign_settings(settings):
    settings.SITE_URL = "https://rapport.example.com"
    settings.CAMPAIGNS_SEND_QUEUE = "test-never-consumed"
