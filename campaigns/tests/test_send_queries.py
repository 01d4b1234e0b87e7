"""The send path reads each chunk with a fixed number of queries: a message field, or a field of
its campaign, enrollment or candidate, that `sending._SEND_FIELDS` leaves out would be loaded
by one query per message."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_scopes import scope, scopes_disabled

from campaigns.models import Message
from campaigns.services.campaigns import campaign_launch
from campaigns.services.dispatch import dispatch_due
from campaigns.services.sending import messages_send
from campaigns.tests.factories import make_broadcast, make_candidates


def _queries_to_send(org, user, in_org, recipients: int) -> tuple[int, int]:
    make_candidates(org, recipients, tags=(f"q{recipients}",))
    campaign = make_broadcast(org, user=user, tag=f"q{recipients}")
    with in_org():
        campaign_launch(campaign=campaign, user=user)
        dispatch_due()
    with scopes_disabled():
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
    with scope(organization=org), CaptureQueriesContext(connection) as queries:
        report = messages_send(organization=org, message_ids=ids)
    return report.sent, len(queries)


def test_queries_do_not_grow_with_the_chunk(org, recruiter_user, in_org):
    sent_few, few = _queries_to_send(org, recruiter_user, in_org, 2)
    sent_many, many = _queries_to_send(org, recruiter_user, in_org, 6)
    assert (sent_few, sent_many) == (2, 6)
    assert many == few
