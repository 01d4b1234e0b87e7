"""The tracking process: `gunicorn crm.asgi:application -k uvicorn_worker.UvicornWorker`, to
which the reverse proxy sends `/e/` (docs/operations.md). The open pixel, the click redirect and
the one-click unsubscribe POST are answered in front of Django (campaigns/tracking_asgi.py);
anything else that reaches it is Django's, through its ASGI handler."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django_application = get_asgi_application()

from campaigns.tracking_asgi import TrackingASGIApplication  # noqa: E402 (needs django.setup())

application = TrackingASGIApplication(django_application)
