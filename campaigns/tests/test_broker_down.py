"""The Celery broker down when a campaign's work commits: the work is in the database, and the
dispatcher's minute (Celery beat) picks it up once the broker is back, so the recruiter's
action succeeds instead of answering 500 for a launch or a test email that did happen. Queuing
the task is then only a head start: the launch's dispatch, its audience batches, the send
tasks of written emails and a test email each have a backstop in the dispatcher (audience
batches older than 30 s are enrolled, queued emails whose task never came are queued again).
The outside world here is the broker: the Celery app is pointed at a port where nothing
listens."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_scopes import scopes_disabled

from campaigns.models import Campaign, Enrollment, Message
from campaigns.services.dispatch import dispatch_due
from campaigns.tests.factories import (
    EmailTemplateFactory,
    free_port,
    make_broadcast,
    make_candidates,
)
from crm.celery import app as celery_app


@pytest.fixture
def broker_down():
    """Celery's broker is a port where nothing listens, until the test ends."""
    port = free_port()
    before = celery_app.conf.broker_url
    celery_app.conf.broker_url = f"redis://127.0.0.1:{port}/0"
    _forget_broker_connections()
    yield
    celery_app.conf.broker_url = before
    _forget_broker_connections()


def _forget_broker_connections() -> None:
    """The app and its producers take their (kombu) pools from broker_url on next use."""
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.mark.django_db(transaction=True)
def test_a_launch_with_the_broker_down_succeeds_and_the_dispatcher_sends_it_later(
    org, recruiter_user, recruiter_client, broker_down
):
    make_candidates(org, 3)
    campaign = make_broadcast(org, user=recruiter_user)

    response = recruiter_client.post(reverse("campaigns:launch", args=[org.slug, campaign.pk]))

    assert response.status_code == 302
    with scopes_disabled():
        assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.RUNNING
        assert Enrollment.objects.filter(campaign=campaign).count() == 3
    # Beat's next minute: the emails are written even though their send tasks cannot be
    # queued yet (the sweep queues them again once the broker is back).
    dispatch_due(now=timezone.now() + timedelta(minutes=1))
    with scopes_disabled():
        assert Message.objects.filter(campaign=campaign, status="queued").count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_test_email_with_the_broker_down_is_queued_in_the_outbox(
    org, recruiter_user, recruiter_client, broker_down
):
    template = EmailTemplateFactory(organization=org)

    response = recruiter_client.post(
        reverse("campaigns:template_test_send", args=[org.slug, template.pk])
    )

    assert response.status_code == 302
    with scopes_disabled():
        assert list(Message.objects.values_list("is_test", "status")) == [(True, "queued")]
