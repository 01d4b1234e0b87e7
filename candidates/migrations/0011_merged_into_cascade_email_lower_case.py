"""Two integrity guarantees on candidates_candidate.

- merged_into: CASCADE instead of SET NULL. A merged-away profile belongs to the person of the
  profile it was merged into; deleting that profile (a bulk delete, the admin, an erasure) must
  delete it too, not make it live again (with SET NULL it reappeared in every list, and could
  even make the deletion fail: its address may be a live candidate's by now, and
  candidate_email_unique_per_org holds among live profiles). Django carries out on_delete
  itself and the foreign key in the database stays as it is: only the state changes
  (`sqlmigrate` shows a no-op).
- candidate_email_lower_case: CHECK (email = lower(email)). candidate_email_unique_per_org
  compares addresses as stored, so it only stops "Ada@x.org" next to "ada@x.org" if nothing can
  store a capital letter. Added NOT VALID: the ACCESS EXCLUSIVE lock is held only for the
  catalogue change (no scan of the table) and every write is checked from then on; 0012
  checks the existing rows in a transaction of its own, under a lock that lets reads and
  writes go on.
"""

import django.db.models.deletion
import django.db.models.functions.text
from django.db import migrations, models

TABLE = "candidates_candidate"
CHECK = "candidate_email_lower_case"


class Migration(migrations.Migration):
    dependencies = [
        ("candidates", "0010_activity_candidate_fk"),
    ]

    operations = [
        migrations.AlterField(
            model_name="candidate",
            name="merged_into",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="merged_from",
                to="candidates.candidate",
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="candidate",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("email", django.db.models.functions.text.Lower("email"))
                        ),
                        name=CHECK,
                        violation_error_message="Email addresses are stored in lower case.",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=f"ALTER TABLE {TABLE} ADD CONSTRAINT {CHECK}"
                    " CHECK (email = lower(email)) NOT VALID",
                    reverse_sql=f"ALTER TABLE {TABLE} DROP CONSTRAINT {CHECK}",
                ),
            ],
        ),
    ]
