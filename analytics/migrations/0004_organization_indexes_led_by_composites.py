"""Engagement events lose their index on organization_id alone: both composite indexes and the
source-key constraint lead with it, so an organisation's rows (its deletion cascades by
organization_id) are still found by index. Every send and every tracked open or click writes a
row here; the index dropped is one write fewer each time.

The foreign key constraint is left alone (AlterField would drop and re-validate it over the
whole table): only the state changes, the database loses just the index, concurrently.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "analytics_engagementevent"
INDEX = "analytics_engagementevent_organization_id_be83ffca"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("analytics", "0003_engagement_source_key"),
        ("crm", "0002_organization_branding"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="engagementevent",
                    name="organization",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="crm.organization",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}"],
                    reverse_sql=[
                        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON {TABLE} (organization_id)"
                    ],
                ),
            ],
        ),
    ]
