"""Open and click tracking through signed link ids.

The click redirect only ever goes to a link the email contained (Message.links, by index in
the signed token): there is no URL in the request, so there is no open redirect. Machine
events — a privacy proxy or a security scanner fetching the pixel or every link seconds after
delivery — are stored with `is_machine` and the reason, and do not count as engagement.
"""

from datetime import timedelta
from urllib.parse import urlsplit

from django.utils import timezone
from django_scopes import scope, scopes_disabled

from analytics.models import EngagementEvent
from analytics.services import engagement_event_record
from campaigns.models import EmailSettings, Message
from campaigns.services import tokens
from candidates.models import Activity
from candidates.services.activities import activity_record

MACHINE_SECONDS_AFTER_SEND = 5
MACHINE_CLICK_BURST_SECONDS = 1
# User agents of proxies and link scanners that fetch on their own (not a person opening).
MACHINE_USER_AGENTS = (
    "yahoomailproxy",
    "barracuda",
    "mimecast",
    "proofpoint",
    "symantec",
    "trendmicro",
    "ironport",
    "safelinks",
    "bingpreview",
    "python-requests",
    "curl/",
    "wget/",
)


def _message_for(token: str, salt: str) -> tuple[Message, int] | None:
    content = tokens.token_read(token, salt=salt)
    if content is None or not content.message_id:
        return None
    with scopes_disabled():
        message = (
            Message.objects.select_related("organization", "campaign", "candidate")
            .filter(
                organization_id=content.organization_id,
                candidate_id=content.candidate_id,
                pk=content.message_id,
            )
            .first()
        )
    if message is None:
        return None
    return message, content.link_index


def machine_reason(*, message: Message, user_agent: str, now) -> str:
    agent = (user_agent or "").lower()
    if not agent:
        return "no_user_agent"
    if any(marker in agent for marker in MACHINE_USER_AGENTS):
        return "proxy_user_agent"
    if message.sent_at and now - message.sent_at < timedelta(seconds=MACHINE_SECONDS_AFTER_SEND):
        return "seconds_after_send"
    return ""


def open_record(*, token: str, user_agent: str) -> bool:
    """Record an open if the token is good and the organisation tracks opens."""
    found = _message_for(token, tokens.OPEN_SALT)
    if found is None:
        return False
    message, _ = found
    with scope(organization=message.organization):
        email_settings = EmailSettings.objects.filter(organization=message.organization).first()
        if email_settings is not None and not email_settings.track_opens:
            return False
        now = timezone.now()
        reason = machine_reason(message=message, user_agent=user_agent, now=now)
        engagement_event_record(
            organization_id=message.organization_id,
            kind=EngagementEvent.Kind.OPENED,
            candidate_id=message.candidate_id,
            campaign_id=message.campaign_id,
            message_id=message.pk,
            occurred_at=now,
            is_machine=bool(reason),
            machine_reason=reason,
            data={"user_agent": (user_agent or "")[:300]},
        )
        if not reason and message.opened_at is None:
            Message.objects.filter(pk=message.pk, opened_at__isnull=True).update(opened_at=now)
            activity_record(
                candidate=message.candidate,
                kind=Activity.Kind.EMAIL_OPENED,
                summary=f"Opened “{message.subject}”",
                data={"campaign_id": message.campaign_id, "message_id": message.pk},
                occurred_at=now,
            )
    return True


def safe_redirect_target(url: str) -> str | None:
    """Only absolute http(s) URLs with a host; anything else is refused."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "\\" in url:
        return None
    if any(ord(char) < 32 for char in url):
        return None
    return url


def click_record(*, token: str, user_agent: str) -> str | None:
    """The link to redirect to (recording the click), or None for a bad token or link."""
    found = _message_for(token, tokens.CLICK_SALT)
    if found is None:
        return None
    message, index = found
    links = message.links or []
    if index >= len(links):
        return None
    target = safe_redirect_target(links[index])
    if target is None:
        return None
    with scope(organization=message.organization):
        now = timezone.now()
        reason = machine_reason(message=message, user_agent=user_agent, now=now)
        recent_clicks = EngagementEvent.objects.filter(
            organization_id=message.organization_id,
            message=message,
            kind=EngagementEvent.Kind.CLICKED,
            occurred_at__gte=now - timedelta(seconds=MACHINE_CLICK_BURST_SECONDS),
        ).count()
        if not reason and recent_clicks >= 2:
            reason = "many_links_at_once"
        engagement_event_record(
            organization_id=message.organization_id,
            kind=EngagementEvent.Kind.CLICKED,
            candidate_id=message.candidate_id,
            campaign_id=message.campaign_id,
            message_id=message.pk,
            occurred_at=now,
            is_machine=bool(reason),
            machine_reason=reason,
            data={"url": target[:500], "link_index": index},
        )
        if not reason and message.clicked_at is None:
            Message.objects.filter(pk=message.pk, clicked_at__isnull=True).update(clicked_at=now)
            activity_record(
                candidate=message.candidate,
                kind=Activity.Kind.EMAIL_CLICKED,
                summary=f"Clicked a link in “{message.subject}”",
                data={"campaign_id": message.campaign_id, "url": target[:500]},
                occurred_at=now,
            )
    return target
