"""Building one outbox Message: render the step for one person, add the layout, the tracked
links and the list headers. Used by the dispatcher (in bulk), the preview and test sends."""

import html as html_lib
import re
from dataclasses import dataclass
from email.utils import formataddr, make_msgid
from functools import lru_cache

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe

from campaigns.conf import mail_domain, site_url
from campaigns.models import SenderProfile
from campaigns.services import branding, rendering, tokens
from campaigns.services.tracking import TRAP_LINK_INDEX

_HREF = re.compile(r'href="(https?://[^"]+)"')
_URL_SLOT = "URLSLOT0"


@lru_cache(maxsize=16)
def _public_path(name: str) -> str:
    return reverse(name, args=[_URL_SLOT])


def public_url(name: str, token: str) -> str:
    """The absolute URL of a candidate-facing page: `reverse` once per name, not once per link
    (the dispatcher builds ~9 of these per message)."""
    return site_url() + _public_path(name).replace(_URL_SLOT, token)


@dataclass(frozen=True)
class Sender:
    from_email: str  # "Name <address>"
    reply_to: str
    recruiter: dict  # name, title, email: the merge field


def sender_for(*, organization, campaign=None, user=None) -> Sender:
    """From is the organisation's sender; Reply-To and the `recruiter` merge field are the
    campaign's recruiter when there is one (previews and test sends of a campaign show what
    candidates get: its recruiter, not whoever is looking), else `user`. One query for the
    recruiter's signature."""
    person = (campaign.sender if campaign is not None else None) or user
    from_email = formataddr(
        (organization.sender_name or organization.name, organization.sender_email)
    )
    if person is not None:
        signature = (
            SenderProfile.objects.filter(organization_id=organization.pk, user_id=person.pk)
            .values_list("signature", flat=True)
            .first()
        )
        recruiter = {
            "name": person.display_name,
            "title": person.job_title,
            "email": person.email,
            "signature": (signature or "").strip(),
        }
        reply_to = formataddr((person.display_name, person.email))
    else:
        recruiter = {
            "name": organization.sender_name or organization.name,
            "title": "",
            "email": organization.sender_email,
        }
        reply_to = from_email
    return Sender(from_email=from_email, reply_to=reply_to, recruiter=recruiter)


def candidate_links(*, organization_id: int, candidate_id: int, message_id: int) -> dict:
    if not candidate_id:
        # Previews and test sends: links that lead nowhere (no candidate to act for).
        sample = f"{site_url()}/e/u/test-email/"
        return {
            "unsubscribe_url": sample,
            "preferences_url": f"{site_url()}/e/p/test-email/",
            "token": "",
        }
    token = tokens.candidate_token(
        organization_id=organization_id, candidate_id=candidate_id, message_id=message_id
    )
    return {
        "token": token,
        "unsubscribe_url": public_url("campaigns_public:unsubscribe", token),
        "preferences_url": public_url("campaigns_public:preferences", token),
    }


def _track_links(body_html: str, *, organization_id: int, candidate_id: int, message_id: int):
    """Rewrite every http(s) link of the body to a signed click-tracking link; return the new
    HTML and the original links, in order (the redirect only ever goes to one of these)."""
    links: list[str] = []
    own_prefix = site_url() + "/e/"

    def replace(match: re.Match) -> str:
        url = html_lib.unescape(match.group(1))
        if url.startswith(own_prefix):
            return match.group(0)
        if url not in links:
            links.append(url)
        token = tokens.token_make(
            salt=tokens.CLICK_SALT,
            organization_id=organization_id,
            candidate_id=candidate_id,
            message_id=message_id,
            link_index=links.index(url),
        )
        return f'href="{public_url("campaigns_public:click", token)}"'

    return _HREF.sub(replace, body_html), links


@dataclass(frozen=True)
class BuiltMessage:
    subject: str
    preheader: str
    html: str
    text: str
    headers: dict
    message_id: str
    links: list


def message_build(
    *,
    compiled: rendering.CompiledEmail,
    organization,
    campaign,
    sender: Sender,
    candidate_values: dict,
    candidate_id: int,
    message_pk: int,
    track_opens: bool,
    track_clicks: bool,
    context: dict | None = None,
) -> BuiltMessage:
    """Everything a Message row stores, for one person. `message_pk` is allocated before the
    row is written (the dispatcher takes ids from the sequence) so links can name it."""
    links = candidate_links(
        organization_id=organization.pk, candidate_id=candidate_id, message_id=message_pk
    )
    if context is None:
        context = rendering.merge_context(
            rendering.merge_source(
                candidate=candidate_values,
                organization=organization,
                recruiter=sender.recruiter,
                links=links,
            )
        )
    rendered = rendering.email_render(compiled, context)
    body_html, tracked = rendered.html_body, []
    if track_clicks and candidate_id:
        body_html, tracked = _track_links(
            body_html,
            organization_id=organization.pk,
            candidate_id=candidate_id,
            message_id=message_pk,
        )
    trap_url = ""
    if track_clicks and candidate_id:
        # An invisible link no person can see or reach: whatever follows it is a scanner.
        trap_token = tokens.token_make(
            salt=tokens.CLICK_SALT,
            organization_id=organization.pk,
            candidate_id=candidate_id,
            message_id=message_pk,
            link_index=TRAP_LINK_INDEX,
        )
        trap_url = public_url("campaigns_public:click", trap_token)
    pixel_url = ""
    if track_opens and candidate_id:
        pixel_token = tokens.token_make(
            salt=tokens.OPEN_SALT,
            organization_id=organization.pk,
            candidate_id=candidate_id,
            message_id=message_pk,
        )
        pixel_url = public_url("campaigns_public:open", pixel_token)
    layout = {
        "organization": organization,
        "brand": branding.brand_for(organization),
        "subject": rendered.subject,
        "preheader": rendered.preheader,
        "body_html": mark_safe(body_html),  # noqa: S308 — rendered by the autoescaping sandbox
        "body_text": rendered.text_body,
        "unsubscribe_url": links["unsubscribe_url"],
        "preferences_url": links["preferences_url"],
        "pixel_url": pixel_url,
        "trap_url": trap_url,
    }
    domain = mail_domain(organization.sender_email)
    message_id = make_msgid(idstring=f"m{message_pk}", domain=domain)
    headers = {"Message-ID": message_id}
    if campaign is not None:
        mailto = f"mailto:unsubscribe+{links['token'] or 'test'}@{domain}"
        headers.update(
            {
                "List-Unsubscribe": f"<{links['unsubscribe_url']}>, <{mailto}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "List-Id": f'"{_quote(campaign.name)}" <c{campaign.pk}.{organization.slug}.{domain}>',
            }
        )
    return BuiltMessage(
        subject=rendered.subject,
        preheader=rendered.preheader,
        html=render_to_string("campaigns/email/layout.html", layout),
        text=render_to_string("campaigns/email/layout.txt", layout),
        headers=headers,
        message_id=message_id,
        links=tracked,
    )


def _quote(text: str) -> str:
    return " ".join(text.replace("\\", "").replace('"', "'").split())[:100]


_PIXEL_TAG = re.compile(r'<img src="[^"]*/e/o/[^"]*"[^>]*>')
_CANDIDATE_HREF = re.compile(r'href="[^"]*/e/[cup]/[^"]*"')


def message_html_for_staff(html: str) -> str:
    """A sent email as the team may look at it: without the open pixel and with the tracked and
    candidate links disabled, so looking at it neither counts as an open or click nor leads
    anyone into the candidate's own unsubscribe or preference pages."""
    return _CANDIDATE_HREF.sub('href="#"', _PIXEL_TAG.sub("", html))
