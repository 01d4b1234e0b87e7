"""The web entry points and Celery workers freeze what loading the application left alive."""

import gc
import importlib

import pytest

from crm.lifetime import freeze_loaded_objects


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freezing_moves_live_objects_out_of_the_collectors_generations(unfrozen):
    loaded = [[]]  # alive when the process finished loading (a list: the collector tracks it)
    assert gc.get_freeze_count() == 0
    assert any(loaded is tracked for tracked in gc.get_objects())

    frozen = freeze_loaded_objects()

    # Another thread of the test process (a live server's, a browser driver's) can free a
    # frozen object between the two reads; nothing can add one: the count only falls.
    assert 0 < gc.get_freeze_count() <= frozen
    # Frozen: no generation holds it, so no collection walks it; what comes later is tracked.
    assert all(loaded is not tracked for tracked in gc.get_objects())
    made_later = [[]]
    assert any(made_later is tracked for tracked in gc.get_objects())


@pytest.mark.parametrize("module", ["crm.wsgi", "crm.asgi"])
def test_each_web_entry_point_freezes_once_loaded(module, unfrozen):
    importlib.reload(importlib.import_module(module))
    assert gc.get_freeze_count() > 0


def test_a_celery_worker_freezes_once_ready_or_forked(unfrozen):
    """worker_ready: the worker itself (the solo and threads pools run tasks in it);
    worker_process_init: each process of a prefork pool, after the fork."""
    from celery.signals import worker_process_init, worker_ready

    from crm.celery import freeze_worker_objects

    assert freeze_worker_objects in worker_ready._live_receivers(None)
    assert freeze_worker_objects in worker_process_init._live_receivers(None)

    worker_process_init.send(sender=None)

    assert gc.get_freeze_count() > 0
