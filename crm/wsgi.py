import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
django_application = get_wsgi_application()

# The open pixel, the click redirect and the one-click unsubscribe POST are answered in front of
# Django (campaigns/tracking_wsgi.py); everything else is Django's.
from campaigns.tracking_wsgi import TrackingApplication  # noqa: E402 (needs django.setup())

application = TrackingApplication(django_application)

# Loaded for the life of the worker: out of the garbage collector's sight (crm/lifetime.py).
from crm.lifetime import freeze_loaded_objects  # noqa: E402

freeze_loaded_objects()
