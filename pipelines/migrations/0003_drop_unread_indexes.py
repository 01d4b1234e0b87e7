"""Fewer indexes on pool memberships: materialising a smart pool writes hundreds of thousands
of rows and pays for each index on every one.

- organization_id alone: dropped, poolmembership_unique, poolmember_board and
  poolmember_candidate all lead with it.
- added_by_id: partial (WHERE added_by_id IS NOT NULL). Smart members have no adder, so they
  cost nothing; deleting a user (SET NULL) still finds the rows by index.
- pool_id, candidate_id and stage_id alone stay: deleting a pool (and its stages) or a
  candidate needs an index that leads with the column, and none of the composites does.

The foreign key constraints are left alone (AlterField would drop and re-validate them over the
whole table): only the state changes, the database loses just the indexes.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TABLE = "pipelines_poolmembership"


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("pipelines", "0002_followup_source_campaign"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="poolmembership",
                    name="added_by",
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
                    model_name="poolmembership",
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
                        "DROP INDEX IF EXISTS pipelines_poolmembership_added_by_id_b527428e",
                        "DROP INDEX IF EXISTS pipelines_poolmembership_organization_id_5f135e21",
                    ],
                    reverse_sql=[
                        f"CREATE INDEX pipelines_poolmembership_added_by_id_b527428e"
                        f" ON {TABLE} (added_by_id)",
                        f"CREATE INDEX pipelines_poolmembership_organization_id_5f135e21"
                        f" ON {TABLE} (organization_id)",
                    ],
                ),
            ],
        ),
        migrations.AddIndex(
            model_name="poolmembership",
            index=models.Index(
                condition=models.Q(("added_by__isnull", False)),
                fields=["added_by"],
                name="poolmember_added_by",
            ),
        ),
    ]
