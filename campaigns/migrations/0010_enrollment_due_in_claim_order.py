"""The dispatcher's index in the order it claims: (next_run_at, id) over active enrollments.

Built concurrently: the enrollments table keeps taking writes (launches, sends) meanwhile.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("campaigns", "0009_reopen_campaigns_still_sending"),
    ]

    operations = [
        RemoveIndexConcurrently(model_name="enrollment", name="enrollment_due"),
        AddIndexConcurrently(
            model_name="enrollment",
            index=models.Index(
                condition=models.Q(("status", "active")),
                fields=["next_run_at", "id"],
                name="enrollment_due",
            ),
        ),
    ]
