"""Signed tokens for candidate-facing links (unsubscribe, preferences, tracking).

A token names the organisation, the candidate and (when it came in an email) the message, and
is signed with django.core.signing under a salt per purpose, so a token made for one purpose
(an open pixel) is worthless for another (unsubscribing). Tokens stay valid for
TOKEN_MAX_AGE_DAYS. They are compact — ids in base 36 and a 128-bit truncated HMAC-SHA256 — so
the mailto: List-Unsubscribe address `unsubscribe+<token>@domain` stays within the 64 octets
RFC 5321 allows for a local part; they use only [A-Za-z0-9._-], safe in a URL path and in an
address.
"""

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, int_to_base36

from campaigns.conf import TOKEN_MAX_AGE_DAYS

CANDIDATE_SALT = "campaigns.candidate-link"  # unsubscribe and preference centre
# What previews and test sends put in the unsubscribe and preference links (there is no
# candidate to act for): the link opens a page saying what a candidate's link would do.
TEST_EMAIL_TOKEN = "test-email"  # noqa: S105 (not a secret: a placeholder)
OPEN_SALT = "campaigns.open"
CLICK_SALT = "campaigns.click"


@lru_cache(maxsize=64)
def _keyed_hmac(salt: str, key: str) -> "hmac.HMAC":
    """Django's salted HMAC with its derived key computed once (the dispatcher signs ~8 links per
    message): the same bytes as `signing.base64_hmac(salt + "signer", value, key, "sha256")`."""
    derived = hashlib.sha256(force_bytes(salt + "signer") + force_bytes(key)).digest()
    return hmac.new(derived, digestmod=hashlib.sha256)


class _CompactSigner(signing.TimestampSigner):
    def signature(self, value, key=None):
        mac = _keyed_hmac(self.salt, key or self.key).copy()
        mac.update(force_bytes(value))
        return signing.b64_encode(mac.digest()).decode()[:22]  # 22 base64 chars = 132 bits


@lru_cache(maxsize=64)
def _cached_signer(salt: str, secret_key: str) -> _CompactSigner:
    return _CompactSigner(salt=salt, sep=".")


def _signer(salt: str) -> _CompactSigner:
    return _cached_signer(salt, settings.SECRET_KEY)


@dataclass(frozen=True)
class LinkToken:
    organization_id: int
    candidate_id: int
    message_id: int  # 0 when the link did not come from a message
    link_index: int = 0


def _base36(number: int) -> str:
    if number < 36:
        return _DIGITS36[number] if number >= 0 else int_to_base36(number)  # raises
    digits = []
    while number:
        number, digit = divmod(number, 36)
        digits.append(_DIGITS36[digit])
    return "".join(reversed(digits))


_DIGITS36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_timestamp_cache: list = [0, ""]


def _timestamp() -> str:
    now = int(time.time())
    if _timestamp_cache[0] != now:
        _timestamp_cache[:] = [now, signing.b62_encode(now)]
    return _timestamp_cache[1]


def token_make(
    *, salt: str, organization_id: int, candidate_id: int, message_id: int = 0, link_index: int = 0
) -> str:
    """`_signer(salt).sign(value)`, written out: the dispatcher signs ~8 of these per message,
    and the signer's generic path (base 36 via Django, a fresh timestamp, lookups) was most of
    the cost. The bytes are the same (tests compare them with the signer's)."""
    value = (
        f"{_base36(organization_id)}-{_base36(candidate_id)}-{_base36(message_id)}-"
        f"{_base36(link_index)}.{_timestamp()}"
    )
    mac = _keyed_hmac(salt, settings.SECRET_KEY).copy()
    mac.update(value.encode())
    return f"{value}.{base64.urlsafe_b64encode(mac.digest())[:22].decode()}"


def token_read(token: str, *, salt: str) -> LinkToken | None:
    """The token's content, or None for anything forged, altered, expired or malformed."""
    try:
        value = _signer(salt).unsign(token, max_age=timedelta(days=TOKEN_MAX_AGE_DAYS))
        parts = [base36_to_int(part) for part in value.split("-")]
    except (signing.BadSignature, ValueError):
        return None
    if len(parts) != 4 or not parts[0]:
        return None
    return LinkToken(*parts)


def token_organization_id(token: str, *, salt: str) -> int | None:
    """The organisation a genuine token names, however old it is (None when forged, altered or
    malformed): enough for an expired link's page to say whom to contact, nothing more."""
    try:
        value = _signer(salt).unsign(token)
        parts = [base36_to_int(part) for part in value.split("-")]
    except (signing.BadSignature, ValueError):
        return None
    if len(parts) != 4 or not parts[0]:
        return None
    return parts[0]


def candidate_token(*, organization_id: int, candidate_id: int, message_id: int = 0) -> str:
    return token_make(
        salt=CANDIDATE_SALT,
        organization_id=organization_id,
        candidate_id=candidate_id,
        message_id=message_id,
    )
