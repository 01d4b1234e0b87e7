"""Email backends for sending campaigns through anymail, without work that repeats per message.

A broadcast sends thousands of emails over one backend instance (one per send task, see
`campaigns.services.sending`), each a separate API request whose From and Reply-To are the same
and whose To is a plain address. Two costs of anymail's stock backends repeat identically for
every one of them (measured on the send benchmark, docs/performance.md, "The anymail send path"):

* **Address parsing.** anymail parses every From, To and Reply-To with the standard library's
  RFC 5322 header parser (`email.headerregistry`, ~25 µs an address). `CachedAddressesMixin`
  parses each distinct address list once per process and takes a plain ASCII `local@domain`
  apart without the parser (the parser gives the same parts for such an address).
* **Preparing the HTTP request.** requests merges the session's headers, cookies, auth and
  hooks into every request and re-parses the URL (~80 µs). For an ESP API the method, URL and
  headers are the same for every message and only the body changes: `ApiSession` prepares
  them once and fills in the body. A request with files, query parameters, JSON, auth or
  cookies (in the request or the session) is prepared the stock way.
* **Reading the environment.** For every request requests also looks up the proxy variables
  (and NO_PROXY) and the CA bundle variables in the process environment for the request's URL:
  ~170 µs a request by itself on the bench machine (the send benchmark's rate moved by less
  than its run-to-run spread, docs/performance.md). `ApiSession` does it once per URL (and stream,
  verify and cert arguments) for the session's life — a send task's — and reuses the answer;
  a request that names its own proxies is looked up the stock way.

Everything else — the ESP's payload, the request and its TLS, proxies and timeouts, the
response parsing, anymail's errors and signals — is anymail's and requests' own.

To use it, name the backend for your ESP in EMAIL_BACKEND instead of anymail's, e.g.
`EMAIL_BACKEND=campaigns.backends.PostmarkBackend` (its settings are anymail's Postmark
settings). Another anymail ESP gets the same two savings with a subclass like `PostmarkBackend`.
"""

from __future__ import annotations

import re
from functools import lru_cache

import requests
from anymail.backends import postmark
from anymail.backends.base import BasePayload
from anymail.utils import EmailAddress, parse_address_list

# A plain ASCII addr-spec: a dot-atom local part (no quoting, no comments) and a dot-atom ASCII
# domain (no IDNA): the standard library's parser splits such an address at the "@", nothing more.
_PLAIN_ADDRESS = re.compile(
    r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)\Z"
)


@lru_cache(maxsize=1024)
def _parsed(addresses: tuple[str, ...]) -> tuple[EmailAddress, ...]:
    return tuple(parse_address_list(list(addresses)))


def addresses_parse(value) -> list[EmailAddress]:
    """`anymail.utils.parse_address_list`, remembered per distinct address list (EmailAddress
    is immutable), with a plain `local@domain` split instead of parsed."""
    if isinstance(value, str):
        value = [value]
    value = [str(address) for address in value]
    if len(value) == 1 and (plain := _PLAIN_ADDRESS.match(value[0])):
        return [EmailAddress(username=plain[1], domain=plain[2])]
    return list(_parsed(tuple(value)))


class CachedAddressesMixin:
    """For an anymail payload class: From, To, Cc, Bcc and Reply-To through `addresses_parse`."""

    base_message_attrs = tuple(
        (name, combiner, "parsed_addresses" if converter is parse_address_list else converter)
        for name, combiner, converter in BasePayload.base_message_attrs
    )

    def parsed_addresses(self, value) -> list[EmailAddress]:
        return addresses_parse(value)


class ApiSession(requests.Session):
    """A requests session that prepares an API request's method, URL and headers once (with
    the session's own headers and hooks as they are then: set them before the first request),
    and reads the environment's proxy and CA bundle settings once per URL."""

    def __init__(self):
        super().__init__()
        self._templates: dict = {}
        self._environment: dict = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if proxies:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = (url, stream, verify, cert)
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._environment[key] = settings
        # A new dict each time (the caller adds it to the send arguments), proxies copied too.
        proxies = settings["proxies"]
        return {**settings, "proxies": dict(proxies) if proxies is not None else None}

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        if (
            request.files
            or request.params
            or request.json is not None
            or request.auth is not None
            or request.cookies
            or any(request.hooks.values())
            or self.auth is not None
            or self.params
            or self.cookies
            or not isinstance(request.data, (str, bytes))
        ):
            return super().prepare_request(request)
        key = (request.method, request.url, tuple((request.headers or {}).items()))
        template = self._templates.get(key)
        if template is None:
            template = super().prepare_request(
                requests.Request(method=request.method, url=request.url, headers=request.headers)
            )
            self._templates[key] = template
        prepared = template.copy()
        prepared.prepare_body(request.data, None)
        return prepared


class ApiSessionMixin:
    """For an anymail requests backend: its session is an `ApiSession`."""

    def create_session(self) -> requests.Session:
        # anymail's own session set-up (its User-Agent, the DEBUG_API_REQUESTS hook) is kept.
        stock = super().create_session()
        session = ApiSession()
        session.headers, session.hooks = stock.headers, stock.hooks
        stock.close()
        return session


class _PostmarkPayload(CachedAddressesMixin, postmark.PostmarkPayload):
    pass


class PostmarkBackend(ApiSessionMixin, postmark.EmailBackend):
    """anymail's Postmark backend (same settings), with the savings above."""

    def build_message_payload(self, message, defaults):
        return _PostmarkPayload(message, defaults, self)
