"""Check the existing rows against candidate_email_lower_case (added NOT VALID by 0011).

VALIDATE CONSTRAINT scans the table under a SHARE UPDATE EXCLUSIVE lock: reads and writes go on
meanwhile. Every writer of the application stores addresses lower-cased already; a row written
otherwise (the admin, a shell, raw SQL) is lower-cased first. If that makes it collide with a
live profile of its organisation (the duplicate the constraint exists to prevent), the UPDATE
fails on candidate_email_unique_per_org and names the address: merge or correct the two
profiles, then migrate again.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("candidates", "0011_merged_into_cascade_email_lower_case"),
    ]

    operations = [
        migrations.RunSQL(
            sql=[
                "UPDATE candidates_candidate SET email = lower(email) WHERE email <> lower(email)",
                "ALTER TABLE candidates_candidate VALIDATE CONSTRAINT candidate_email_lower_case",
            ],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
