"""The tracking process: `gunicorn crm.asgi:application -k uvicorn_worker.UvicornWorker`, to
which the reverse proxy sends `/e/` (docs/operations.md). The open pixel, the click redirect and
the one-click unsubscribe POST are answered in front of Django (campaigns/tracking_asgi.py);
anything else that reaches it is Django's, through its ASGI handler.

Django's ASGI handler runs each request's synchronous code in a thread of its own, so a
persistent connection (CONN_MAX_AGE) opened there is never used again: it stays open, idle,
until the garbage collector finds it (measured: 10 requests left 10 sessions open with the
collector off, 30 left 3 with it on). Django's documentation says to disable persistent
connections under ASGI; here they are closed when Django's request finishes, so the tracking
answers' own threads (campaigns/tracking_asgi.py) keep theirs."""

import os

from django.core.asgi import get_asgi_application
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished
from django.db import connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django_application = get_asgi_application()

from campaigns.tracking_asgi import TrackingASGIApplication  # noqa: E402 (needs django.setup())


def close_request_connections(sender, **kwargs):
    """At the end of a request through Django's ASGI handler, in the request's thread."""
    connections.close_all()


request_finished.connect(close_request_connections, sender=ASGIHandler)

application = TrackingASGIApplication(django_application)

# Loaded for the life of the worker: out of the garbage collector's sight (crm/lifetime.py).
from crm.lifetime import freeze_loaded_objects  # noqa: E402

freeze_loaded_objects()
