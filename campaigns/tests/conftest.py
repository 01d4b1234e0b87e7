import pytest


@pytest.fixture(autouse=True)
def _campaign_settings(settings):
    settings.SITE_URL = "https://rapport.example.com"
    settings.CAMPAIGNS_SEND_QUEUE = "test-never-consumed"


@pytest.fixture
def launched_broadcast(org, recruiter_user, in_org):
    """A broadcast to three candidates, launched and dispatched: three queued messages."""
    from campaigns.services.campaigns import campaign_launch
    from campaigns.services.dispatch import dispatch_due
    from campaigns.tests.factories import make_broadcast, make_candidates

    candidates = make_candidates(org, 3)
    campaign = make_broadcast(org, user=recruiter_user)
    with in_org():
        campaign_launch(campaign=campaign, user=recruiter_user)
        dispatch_due()
    return campaign, candidates


@pytest.fixture
def postmark(settings):
    """A local fake of Postmark's API (campaigns.tests.fake_postmark), with our anymail
    Postmark backend pointed at it."""
    from campaigns.tests.fake_postmark import FakePostmark

    server = FakePostmark()
    server.start()
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "server-token", "POSTMARK_API_URL": server.url}
    settings.EMAIL_BACKEND = "campaigns.backends.PostmarkBackend"
    yield server
    server.stop()
