"""The Celery application and the task base class that re-enters an organisation's scope."""

import os

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

app = Celery("rapport")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class OrganizationTask(Task):
    """Base for every task that acts for one organisation.

    The task receives ``organization_id`` as a keyword argument (never a model instance) and its
    body runs inside ``scope(organization=...)``, so tenant models are reachable and only the
    organisation's own rows are, with the organisation's time zone active (as on its pages).
    Tasks for an organisation that no longer exists do nothing.
    """

    abstract = True

    def __call__(self, *args, **kwargs):
        from django.utils import timezone
        from django_scopes import scope, scopes_disabled

        from crm.models import Organization

        organization_id = kwargs.get("organization_id")
        if organization_id is None:
            raise TypeError(f"{self.name} must be called with organization_id=…")
        with scopes_disabled():
            organization = Organization.objects.filter(pk=organization_id).first()
        if organization is None:
            return None
        with scope(organization=organization), timezone.override(organization.zone):
            return super().__call__(*args, **kwargs)


@worker_process_init.connect  # each process of a prefork pool, once forked
@worker_ready.connect  # the worker itself: with the solo or threads pool it runs the tasks
def freeze_worker_objects(**kwargs):
    """What loading left alive stays for the worker's life: out of the collector's sight
    (crm/lifetime.py). On the send benchmark each full collection walked ~191,000 objects in
    ~100 ms, 0.7 to 1.0 s of each worker's ~40 s; frozen, 28 to 66 ms in all."""
    from crm.lifetime import freeze_loaded_objects

    freeze_loaded_objects()


@worker_ready.connect
def _announce_worker(**kwargs):
    """Report a heartbeat as soon as a worker is ready, not only at beat's next tick."""
    from crm.tasks import heartbeat

    heartbeat.delay()


@task_prerun.connect
@task_postrun.connect
def close_old_database_connections(task=None, **kwargs):
    """A worker's database connections live by Django's rules for a request: before and after
    each task, a connection older than CONN_MAX_AGE, or one whose last query failed and that no
    longer answers, is closed, and the next task's first query checks the connection it reuses
    (CONN_HEALTH_CHECKS), so a server-side disconnect costs a reconnect, not a failed task.

    Celery's fixup would otherwise close every connection around every task (settings:
    CELERY_DB_REUSE_MAX). Eager runs (tests, `.apply()`) happen inside the caller's own
    connection and transaction, which are not the task's to close."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
