"""Pool memberships: one foreign key per referenced row, checked together with the organisation.

PostgreSQL checks each foreign key with one query per inserted row, and materialising a smart
pool inserts a membership per member (300,000 in the benchmark). A membership had four checked
foreign keys besides added_by: organization, pool, candidate and stage. Now it has three, each
composite with organization_id:

- poolmember_pool_fk      (organization_id, pool_id)      → pipelines_pool (organization_id, id)
- poolmember_candidate_fk (organization_id, candidate_id) → candidates_candidate (organization_id, id)
- poolmember_stage_fk     (organization_id, stage_id)     → pipelines_stage (organization_id, id)

The organisation's own foreign key is redundant with them: the pool's organization_id is a
checked foreign key to crm_organization, and the membership's must equal it. And integrity is
stronger than before: a membership can no longer name a pool, candidate or stage of another
organisation. pipelines_pool and pipelines_stage get UNIQUE (organization_id, id) as targets
(small tables); candidates' is added by candidates 0010. The single-column indexes stay (the
ORM's cascades look rows up by pool_id, candidate_id and stage_id alone). Django keeps the
fields (db_constraint=False) and still cascades and protects as declared.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "pipelines_poolmembership"
NEW = [
    ("poolmember_pool_fk", "pool_id", "pipelines_pool"),
    ("poolmember_candidate_fk", "candidate_id", "candidates_candidate"),
    ("poolmember_stage_fk", "stage_id", "pipelines_stage"),
]
OLD = [
    (
        "pipelines_poolmember_organization_id_5f135e21_fk_crm_organ",
        "organization_id",
        "crm_organization",
    ),
    ("pipelines_poolmembership_pool_id_a9a5fa78_fk_pipelines_pool_id", "pool_id", "pipelines_pool"),
    (
        "pipelines_poolmember_candidate_id_4855cceb_fk_candidate",
        "candidate_id",
        "candidates_candidate",
    ),
    ("pipelines_poolmember_stage_id_4d3af0b5_fk_pipelines", "stage_id", "pipelines_stage"),
]
DEFERRED = "DEFERRABLE INITIALLY DEFERRED"


class Migration(migrations.Migration):
    dependencies = [
        ("candidates", "0010_activity_candidate_fk"),
        ("crm", "0001_initial"),
        ("pipelines", "0003_drop_unread_indexes"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="pool",
            constraint=models.UniqueConstraint(
                fields=("organization", "id"), name="pool_org_id_unique"
            ),
        ),
        migrations.AddConstraint(
            model_name="stage",
            constraint=models.UniqueConstraint(
                fields=("organization", "id"), name="stage_org_id_unique"
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="poolmembership",
                    name="organization",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="crm.organization",
                    ),
                ),
                migrations.AlterField(
                    model_name="poolmembership",
                    name="pool",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to="pipelines.pool",
                    ),
                ),
                migrations.AlterField(
                    model_name="poolmembership",
                    name="candidate",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="pool_memberships",
                        to="candidates.candidate",
                    ),
                ),
                migrations.AlterField(
                    model_name="poolmembership",
                    name="stage",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="pipelines.stage",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        *(
                            f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} FOREIGN KEY"
                            f" (organization_id, {column}) REFERENCES {target}"
                            f" (organization_id, id) {DEFERRED}"
                            for name, column, target in NEW
                        ),
                        *(f"ALTER TABLE {TABLE} DROP CONSTRAINT {name}" for name, _, _ in OLD),
                    ],
                    reverse_sql=[
                        *(
                            f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} FOREIGN KEY ({column})"
                            f" REFERENCES {target} (id) {DEFERRED}"
                            for name, column, target in OLD
                        ),
                        *(f"ALTER TABLE {TABLE} DROP CONSTRAINT {name}" for name, _, _ in NEW),
                    ],
                ),
            ],
        ),
    ]
