"""The outbox's write-heavy tables lose their index on organization_id alone: every composite
index (and the unique constraints) there leads with it, so an organisation's rows (its deletion
cascades by organization_id) are still found by index. A broadcast writes an enrollment and a
message per candidate and updates each twice more; each index dropped is one write fewer each
time.

The foreign key constraints are left alone (AlterField would drop and re-validate them over the
whole table): only the state changes, the database loses just the indexes, concurrently.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "campaigns_enrollment": "campaigns_enrollment_organization_id_0e2efe62",
    "campaigns_message": "campaigns_message_organization_id_8c9319db",
}


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("campaigns", "0010_enrollment_due_in_claim_order"),
        ("crm", "0002_organization_branding"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name=model,
                    name="organization",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="crm.organization",
                    ),
                )
                for model in ("enrollment", "message")
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[f"DROP INDEX CONCURRENTLY IF EXISTS {name}" for name in INDEXES.values()],
                    reverse_sql=[
                        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} (organization_id)"
                        for table, name in INDEXES.items()
                    ],
                ),
            ],
        ),
    ]
