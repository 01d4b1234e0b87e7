"""Stored files that go with deleted rows."""

import logging

from django.core.files.storage import default_storage
from django.db import transaction

logger = logging.getLogger(__name__)


def stored_files_delete_on_commit(names) -> None:
    """Remove these stored files once the current transaction commits (a rolled-back deletion
    keeps them). A file that cannot be removed is logged and skipped: the rows are gone
    already, and the other files still go."""
    names = [name for name in names if name]
    if not names:
        return

    def remove() -> None:
        for name in names:
            try:
                default_storage.delete(name)
            except OSError:
                logger.warning("Could not remove the stored file %s", name, exc_info=True)

    transaction.on_commit(remove)
