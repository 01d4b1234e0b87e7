"""One foreign key for a timeline entry's organisation and candidate instead of one each.

PostgreSQL checks a foreign key with one query per inserted row, and the bulk writers add an
entry per candidate (a smart pool of 300,000 members writes 300,000 entries in one statement).
`organization_id` had its own foreign key, which only proved that the organisation exists.

- candidates_candidate gets UNIQUE (organization_id, id) (candidate_org_id_unique), the target
  of composite foreign keys. It replaces the index on organization_id alone, which every
  query and cascade that used it can use as well (it leads with organization_id), so a
  candidate still maintains the same number of indexes.
- candidates_activity: activity_candidate_fk (organization_id, candidate_id) →
  candidates_candidate (organization_id, id) replaces the two single-column foreign keys.
  Integrity is stronger than before: an entry can no longer name another organisation's
  candidate, and the candidate's own foreign key to crm_organization proves the organisation
  exists. Django keeps both fields (db_constraint=False) and still cascades deletions.
"""

import django.db.models.deletion
from django.db import migrations, models

FK = "activity_candidate_fk"
OLD_CANDIDATE_FK = "candidates_activity_candidate_id_6f705300_fk_candidate"
OLD_ORGANIZATION_FK = "candidates_activity_organization_id_b44bf592_fk_crm_organ"
OLD_ORGANIZATION_INDEX = "candidates_candidate_organization_id_18eff910"


class Migration(migrations.Migration):
    dependencies = [
        ("candidates", "0009_activity_auto_reply"),
        ("crm", "0001_initial"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="candidate",
            constraint=models.UniqueConstraint(
                fields=("organization", "id"), name="candidate_org_id_unique"
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="candidate",
                    name="organization",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="candidates",
                        to="crm.organization",
                    ),
                ),
                migrations.AlterField(
                    model_name="activity",
                    name="organization",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="crm.organization",
                    ),
                ),
                migrations.AlterField(
                    model_name="activity",
                    name="candidate",
                    field=models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="activities",
                        to="candidates.candidate",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        f"DROP INDEX IF EXISTS {OLD_ORGANIZATION_INDEX}",
                        f"ALTER TABLE candidates_activity ADD CONSTRAINT {FK}"
                        " FOREIGN KEY (organization_id, candidate_id)"
                        " REFERENCES candidates_candidate (organization_id, id)"
                        " DEFERRABLE INITIALLY DEFERRED",
                        f"ALTER TABLE candidates_activity DROP CONSTRAINT {OLD_CANDIDATE_FK}",
                        f"ALTER TABLE candidates_activity DROP CONSTRAINT {OLD_ORGANIZATION_FK}",
                    ],
                    reverse_sql=[
                        f"ALTER TABLE candidates_activity ADD CONSTRAINT {OLD_ORGANIZATION_FK}"
                        " FOREIGN KEY (organization_id) REFERENCES crm_organization (id)"
                        " DEFERRABLE INITIALLY DEFERRED",
                        f"ALTER TABLE candidates_activity ADD CONSTRAINT {OLD_CANDIDATE_FK}"
                        " FOREIGN KEY (candidate_id) REFERENCES candidates_candidate (id)"
                        " DEFERRABLE INITIALLY DEFERRED",
                        f"ALTER TABLE candidates_activity DROP CONSTRAINT {FK}",
                        f"CREATE INDEX {OLD_ORGANIZATION_INDEX}"
                        " ON candidates_candidate (organization_id)",
                    ],
                ),
            ],
        ),
    ]
