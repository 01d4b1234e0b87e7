import socket
from datetime import timedelta

from django.utils import timezone

from crm.celery import app
from crm.models import Invitation, WorkerHeartbeat


@app.task(name="crm.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Beat runs this every 30 s; /healthz reports the worker as down when it stops arriving."""
    WorkerHeartbeat.objects.update_or_create(
        hostname=socket.gethostname(), defaults={"seen_at": timezone.now()}
    )


@app.task(name="crm.purge_expired_invitations", ignore_result=True)
def purge_expired_invitations() -> int:
    """Delete invitations that expired more than 30 days ago (tenant-wide housekeeping)."""
    from django_scopes import scopes_disabled

    cutoff = timezone.now() - timedelta(days=30)
    with scopes_disabled():
        deleted, _ = Invitation.objects.filter(
            accepted_at__isnull=True, expires_at__lt=cutoff
        ).delete()
    return deleted
