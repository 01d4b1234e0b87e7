"""Email backends that stand in for the outside world (an SMTP server or ESP) in tests."""

import smtplib

from django.core import mail
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class ScriptedBackend(LocmemBackend):
    """Like locmem, but raises the next exception of `ScriptedBackend.script` (a list of
    exceptions or None) for each message it is asked to send."""

    script: list = []

    def send_messages(self, messages):
        for _ in messages:
            if ScriptedBackend.script:
                error = ScriptedBackend.script.pop(0)
                if error is not None:
                    raise error
        return super().send_messages(messages)


def hard_bounce(address: str) -> Exception:
    return smtplib.SMTPRecipientsRefused({address: (550, b"5.1.1 No such user")})


def deferred() -> Exception:
    return smtplib.SMTPResponseException(421, b"4.7.0 Try again later")


__all__ = ["ScriptedBackend", "deferred", "hard_bounce", "mail"]
