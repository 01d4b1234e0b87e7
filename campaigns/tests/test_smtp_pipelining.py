"""Campaign email over SMTP with PIPELINING (services/smtp.py): MAIL, RCPT and DATA in one
write when the server advertises it, with sendmail's outcomes when the server refuses; and the
send path, through Django's SMTP backend, against such a server (an aiosmtpd stand-in for the
outside world)."""

import email
import email.policy
import smtplib
import socket

import pytest
from aiosmtpd.controller import Controller
from django_scopes import scope, scopes_disabled

from campaigns.models import Message
from campaigns.services import smtp as pipelined
from campaigns.services.sending import messages_send

DATA = (
    b"From: a@acme.example\r\nTo: b@example.com\r\nSubject: hi\r\n\r\n"
    b"first line\r\n.a line starting with a dot\r\n.\r\nlast line\r\n"
)


class Server:
    """Records what it accepts; refuses senders and recipients it is told to, with a code."""

    def __init__(self, *, pipelining=True):
        self.pipelining = pipelining
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse_sender: dict[str, str] = {}
        self.refuse_recipient: dict[str, str] = {}

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if address in self.refuse_sender:
            return self.refuse_sender[address]
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_recipient:
            return self.refuse_recipient[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


class CountingSMTP(smtplib.SMTP):
    """smtplib's client, counting the writes it makes (one per round trip it starts)."""

    writes = 0

    def send(self, s):
        self.writes += 1
        return super().send(s)


@pytest.fixture
def server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Server()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.port = port
    yield handler
    controller.stop()


def test_pipelined_messages_arrive_intact_in_two_writes_each(server):
    with CountingSMTP("127.0.0.1", server.port) as client:
        client.ehlo()
        before = client.writes
        for n in range(3):
            refused = pipelined.sendmail(client, "a@acme.example", [f"r{n}@example.com"], DATA)
            assert refused == {}
        writes = client.writes - before
    assert writes == 3 * 2  # commands, then the message: sendmail makes four
    assert [(f, t) for f, t, _ in server.received] == [
        ("a@acme.example", [f"r{n}@example.com"]) for n in range(3)
    ]
    assert all(content == DATA for _, _, content in server.received)  # dot-stuffing undone


def test_without_pipelining_it_is_smtplibs_sendmail(server):
    server.pipelining = False
    with CountingSMTP("127.0.0.1", server.port) as client:
        client.ehlo()
        before = client.writes
        pipelined.sendmail(client, "a@acme.example", ["r@example.com"], DATA)
        writes = client.writes - before
    assert writes == 4  # MAIL, RCPT, DATA, the message
    assert [content for _, _, content in server.received] == [DATA]


def test_refused_recipient_raises_like_sendmail_and_the_connection_goes_on(server):
    server.refuse_recipient["gone@example.com"] = "550 5.1.1 No such user"
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            pipelined.sendmail(client, "a@acme.example", ["gone@example.com"], DATA)
        assert refused.value.recipients == {"gone@example.com": (550, b"5.1.1 No such user")}
        pipelined.sendmail(client, "a@acme.example", ["next@example.com"], DATA)
    assert [to for _, to, _ in server.received] == [["next@example.com"]]


def test_some_recipients_refused_are_returned_the_others_get_it(server):
    server.refuse_recipient["gone@example.com"] = "550 5.1.1 No such user"
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        refused = pipelined.sendmail(
            client, "a@acme.example", ["gone@example.com", "here@example.com"], DATA
        )
    assert refused == {"gone@example.com": (550, b"5.1.1 No such user")}
    assert [to for _, to, _ in server.received] == [["here@example.com"]]


def test_refused_sender_raises_like_sendmail(server):
    server.refuse_sender["a@acme.example"] = "553 5.7.1 Not yours"
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            pipelined.sendmail(client, "a@acme.example", ["r@example.com"], DATA)
        assert (refused.value.smtp_code, refused.value.sender) == (553, "a@acme.example")
        pipelined.sendmail(client, "b@acme.example", ["r@example.com"], DATA)
    assert [f for f, _, _ in server.received] == ["b@acme.example"]


def test_deferred_recipient_is_a_4xx_and_421_closes(server):
    server.refuse_recipient["busy@example.com"] = "421 4.7.0 Try again later"
    client = smtplib.SMTP("127.0.0.1", server.port)
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        pipelined.sendmail(client, "a@acme.example", ["busy@example.com"], DATA)
    assert refused.value.recipients["busy@example.com"][0] == 421
    assert client.sock is None  # closed, as sendmail does on a 421
    assert server.received == []


def test_send_path_over_smtp_with_pipelining(launched_broadcast, org, server, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_USE_TLS = False
    campaign, candidates = launched_broadcast
    with scopes_disabled():
        ids = list(Message.objects.filter(campaign=campaign).values_list("pk", flat=True))
    with scope(organization=org):
        report = messages_send(organization=org, message_ids=ids)
    assert report.sent == 3
    with scopes_disabled():
        stored = {m.to_email: m for m in Message.objects.filter(campaign=campaign)}
    assert sorted(to for _, (to,), _ in server.received) == sorted(c.email for c in candidates)
    for _, (to,), content in server.received:
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert parsed["Message-ID"] == stored[to].message_id
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert parsed["List-Id"] and parsed["List-Unsubscribe"]
        assert stored[to].status == Message.Status.SENT and stored[to].sent_at is not None
