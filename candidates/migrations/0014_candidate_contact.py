import django.db.models.deletion
from django.db import migrations, models

# Every candidate with a "last contacted" time gets its CandidateContact row before the column
# goes (the index first: it is the largest of the two writes).
COPY_CONTACTS = """
    INSERT INTO candidates_candidatecontact (candidate_id, organization_id, last_contacted_at)
    SELECT id, organization_id, last_contacted_at FROM candidates_candidate
    WHERE last_contacted_at IS NOT NULL
"""

COPY_BACK = """
    UPDATE candidates_candidate c SET last_contacted_at = k.last_contacted_at
    FROM candidates_candidatecontact k WHERE k.candidate_id = c.id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("candidates", "0013_note_contact"),
        ("crm", "0002_organization_branding"),
    ]

    operations = [
        migrations.CreateModel(
            name="CandidateContact",
            fields=[
                (
                    "candidate",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="contact",
                        serialize=False,
                        to="candidates.candidate",
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="crm.organization",
                    ),
                ),
                ("last_contacted_at", models.DateTimeField()),
            ],
        ),
        migrations.RunSQL(COPY_CONTACTS, reverse_sql=COPY_BACK),
        migrations.AddIndex(
            model_name="candidatecontact",
            index=models.Index(
                fields=["organization", "-last_contacted_at", "-candidate"],
                name="contact_org_recent",
            ),
        ),
        migrations.RemoveIndex(model_name="candidate", name="cand_org_contacted"),
        migrations.RemoveField(model_name="candidate", name="last_contacted_at"),
    ]
