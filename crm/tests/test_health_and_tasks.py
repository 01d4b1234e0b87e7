import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django_scopes import scopes_disabled

from crm.celery import OrganizationTask, app
from crm.models import Membership, WorkerHeartbeat
from crm.tasks import heartbeat


def test_healthz_reports_database_and_redis_and_missing_worker(client, db):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200
    assert (body["database"], body["redis"], body["worker"]) == ("ok", "ok", "no heartbeat yet")
    assert body["status"] == "degraded"


def test_healthz_stale_heartbeat_is_reported(client, db):
    WorkerHeartbeat.objects.create(
        hostname="old-worker", seen_at=timezone.now() - timedelta(minutes=10)
    )
    body = client.get("/healthz").json()
    assert body["worker"] == "stale"
    assert body["worker_heartbeat_age_seconds"] >= 600


def test_healthz_redis_down_is_503(client, db, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"].startswith("error")


@app.task(base=OrganizationTask, name="tests.count_memberships_in_scope")
def count_memberships_in_scope(*, organization_id):
    # Runs inside the organisation's scope: an unscoped query would raise ScopeError.
    return Membership.objects.count()


def test_organization_task_enters_the_scope_of_its_organization(org, admin_user, outsider_user):
    result = count_memberships_in_scope.apply(kwargs={"organization_id": org.pk}).get()
    assert result == 1


def test_organization_task_for_deleted_organization_does_nothing(db):
    assert count_memberships_in_scope.apply(kwargs={"organization_id": 999999}).get() is None


def test_organization_task_requires_organization_id(db):
    with pytest.raises(TypeError):
        count_memberships_in_scope.apply(kwargs={}, throw=True).get()


@pytest.fixture
def celery_worker_process(transactional_db):
    """A real Celery worker in a subprocess, on the test database and a private queue."""
    db = connection.settings_dict
    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        # The worker's connections are named after its queue (see _worker_backends).
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        f"?application_name={queue}",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "crm",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "warning",
        ],
        env=env,
        cwd=settings.BASE_DIR,
    )
    yield queue
    process.terminate()
    process.wait(timeout=20)


def test_worker_heartbeat_through_real_worker_makes_healthz_ok(client, celery_worker_process):
    heartbeat.apply_async(queue=celery_worker_process)

    deadline = time.monotonic() + 60
    while not WorkerHeartbeat.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    body = client.get("/healthz").json()

    assert body["worker"] == "ok"
    assert body["status"] == "ok"


def _heartbeat_through(queue: str, previous=None, timeout: float = 60):
    """Run one heartbeat on the worker; the time it recorded, once it has."""
    heartbeat.apply_async(queue=queue)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = WorkerHeartbeat.objects.values_list("seen_at", flat=True).first()
        if seen is not None and seen != previous:
            return seen
        time.sleep(0.1)
    pytest.fail("the worker did not run the heartbeat")


def _worker_backends(queue: str) -> list[int]:
    """The worker's connections to the database (named after its queue by the fixture)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [queue])
        return sorted(row[0] for row in cursor.fetchall())


def test_a_worker_keeps_its_database_connection_across_tasks(celery_worker_process):
    """Not a new PostgreSQL backend for every task (Celery's fixup closes the connection around
    each task unless told otherwise): the connection follows CONN_MAX_AGE, as in the web."""
    first = _heartbeat_through(celery_worker_process)
    after_first = _worker_backends(celery_worker_process)
    _heartbeat_through(celery_worker_process, previous=first, timeout=20)
    after_second = _worker_backends(celery_worker_process)
    assert len(after_first) == 1
    assert after_second == after_first


def test_a_worker_reconnects_when_the_server_dropped_its_connection(celery_worker_process):
    """A kept connection that the server closed (a restart, an idle timeout) is checked before
    the next task uses it: that task runs on a new connection instead of failing."""
    first = _heartbeat_through(celery_worker_process)
    [dropped] = _worker_backends(celery_worker_process)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [dropped])
    _heartbeat_through(celery_worker_process, previous=first, timeout=20)
    assert dropped not in _worker_backends(celery_worker_process)


def test_celery_configuration_is_safe_for_email():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_routes["campaigns.*"] == {"queue": "email"}
    assert {"worker-heartbeat", "expire-invitations"} <= set(conf.beat_schedule)


def test_purge_expired_invitations_removes_only_old_ones(org):
    from crm.models import Invitation
    from crm.tasks import purge_expired_invitations

    with scopes_disabled():
        old = Invitation.objects.create(
            organization=org,
            email="a@x.org",
            token_hash="a" * 64,
            expires_at=timezone.now() - timedelta(days=40),
        )
        recent = Invitation.objects.create(
            organization=org,
            email="b@x.org",
            token_hash="b" * 64,
            expires_at=timezone.now() - timedelta(days=1),
        )
        purge_expired_invitations()
        remaining = set(Invitation.objects.values_list("pk", flat=True))
    assert remaining == {recent.pk}
    assert old.pk not in remaining
