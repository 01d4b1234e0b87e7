"""Fewer indexes on the timeline: every bulk writer (imports, smart pools, sending) adds an
entry per candidate and pays for each index on every row.

- organization_id alone: dropped, activity_timeline leads with it.
- actor_id, note_id: only set on a minority of entries (smart pools, imports and sending write
  neither), so their indexes become partial (WHERE … IS NOT NULL). Deleting a user (SET NULL)
  or a note (CASCADE) still finds the rows by index; entries without them cost nothing.
- candidate_id alone stays: deleting candidates cascades by it and no index leads with it.

The foreign key constraints are left alone (AlterField would drop and re-validate them over the
whole table): only the state changes, the database loses just the indexes.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TABLE = "candidates_activity"


class Migration(migrations.Migration):
    dependencies = [
        ("candidates", "0007_trigram_indexes_without_tenant_key"),
        ("crm", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="activity",
                    name="actor",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="activity",
                    name="note",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="activities",
                        to="candidates.note",
                    ),
                ),
                migrations.AlterField(
                    model_name="activity",
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
                    sql=[
                        "DROP INDEX IF EXISTS candidates_activity_actor_id_c1ee679d",
                        "DROP INDEX IF EXISTS candidates_activity_note_id_26e73ee4",
                        "DROP INDEX IF EXISTS candidates_activity_organization_id_b44bf592",
                    ],
                    reverse_sql=[
                        f"CREATE INDEX candidates_activity_actor_id_c1ee679d ON {TABLE} (actor_id)",
                        f"CREATE INDEX candidates_activity_note_id_26e73ee4 ON {TABLE} (note_id)",
                        f"CREATE INDEX candidates_activity_organization_id_b44bf592"
                        f" ON {TABLE} (organization_id)",
                    ],
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="activity",
            index=models.Index(
                condition=models.Q(("actor__isnull", False)),
                fields=["actor"],
                name="activity_actor",
            ),
        ),
        migrations.AddIndex(
            model_name="activity",
            index=models.Index(
                condition=models.Q(("note__isnull", False)), fields=["note"], name="activity_note"
            ),
        ),
    ]
