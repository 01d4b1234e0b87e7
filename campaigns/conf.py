"""Campaign settings with their defaults; each can be overridden in Django settings."""

import os
from urllib.parse import urlparse

from django.conf import settings


def setting(name: str, default):
    """A Django setting, else the environment variable of the same name, else the default."""
    return getattr(settings, name, os.environ.get(name, default))


def site_url() -> str:
    return settings.SITE_URL.rstrip("/")


def mail_domain(sender_email: str = "") -> str:
    """The domain of Message-IDs, List-Ids and the mailto: unsubscribe address: the sender's
    own domain (CAMPAIGNS_MAIL_DOMAIN overrides it, e.g. a bounce/return domain)."""
    configured = setting("CAMPAIGNS_MAIL_DOMAIN", "")
    if configured:
        return configured
    if "@" in sender_email:
        return sender_email.rsplit("@", 1)[1].lower()
    return urlparse(settings.SITE_URL).hostname or "localhost"


# Messages per send task (one task carries this many ids; never a task per message).
SEND_CHUNK = 500
# Enrollments claimed per dispatcher transaction.
DISPATCH_CHUNK = 500
# Chunks one `campaigns.dispatch` task renders before it hands the rest to a new task queued
# behind the send tasks it just queued, so every worker takes turns rendering and sending
# instead of one worker rendering a whole broadcast while the others wait for its output.
DISPATCH_CHUNKS_PER_TASK = 1
# The first chunk a launch's dispatcher renders: its send task goes out while the next chunk
# (DISPATCH_CHUNK) is being rendered.
LAUNCH_FIRST_CHUNK = 50
# Candidate ids per stored audience batch at launch (services/campaigns.py): the first batch
# (AUDIENCE_FIRST_BATCH, small: the launch waits for it) is enrolled by the launch itself, the
# rest by the `campaigns.enroll` task, one batch per transaction.
AUDIENCE_FIRST_BATCH = 1000
AUDIENCE_BATCH = 10000
# A batch still waiting this long after its launch lost its task; the dispatcher enrolls it.
AUDIENCE_BATCH_STALE_SECONDS = 30


def send_lease_seconds() -> int:
    """How long a send task may hold a claimed message (`sending`) before the sweeper
    decides its worker died and queues the message again (with the same Message-ID). A live
    task stops claiming new work after half of this, so it never outlives its lease."""
    return int(setting("CAMPAIGNS_SEND_LEASE_SECONDS", 300))


def requeue_after_seconds() -> int:
    """A queued message whose send task has not picked it up after this long (throttled, or its
    task was lost with a worker) is handed to a new task by the sweeper."""
    return int(setting("CAMPAIGNS_REQUEUE_AFTER_SECONDS", 120))


MAX_ATTEMPTS = 6  # transient failures; then the message is marked failed
# A provider's "slow down" (HTTP 429, SES's throttling, an SMTP relay's throttling reply) is
# not a failed attempt and never fails a message: it waits for the provider's Retry-After (at
# most THROTTLE_RETRY_AFTER_MAX_SECONDS), else 1, 2, 4, 8… minutes while the throttling lasts,
# at most THROTTLE_BACKOFF_MAX_SECONDS.
THROTTLE_BACKOFF_MAX_SECONDS = 15 * 60
THROTTLE_RETRY_AFTER_MAX_SECONDS = 24 * 60 * 60
TOKEN_MAX_AGE_DAYS = 400  # candidate links work for more than a year (≥ 60 days required)


def send_queue() -> str | None:
    """The Celery queue send tasks go to; None follows CELERY_TASK_ROUTES ("email")."""
    return setting("CAMPAIGNS_SEND_QUEUE", None) or None
