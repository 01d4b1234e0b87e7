"""Candidates' time zone (campaign sequences send inside their window in it) and the
timeline kind of campaign sequence events."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("candidates", "0004_duplicates_alternate_emails_index")]

    operations = [
        migrations.AddField(
            model_name="candidate",
            name="time_zone",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.AlterField(
            model_name="activity",
            name="kind",
            field=models.CharField(
                choices=[
                    ("created", "Profile created"),
                    ("edited", "Profile edited"),
                    ("status_changed", "Status changed"),
                    ("note_added", "Note"),
                    ("attachment_added", "File attached"),
                    ("imported", "Imported"),
                    ("merged", "Profiles merged"),
                    ("unmerged", "Merge undone"),
                    ("tagged", "Tags changed"),
                    ("owner_changed", "Owner changed"),
                    ("pool_added", "Added to pool"),
                    ("pool_removed", "Removed from pool"),
                    ("stage_changed", "Stage changed"),
                    ("email_sent", "Email sent"),
                    ("email_opened", "Email opened"),
                    ("email_clicked", "Link clicked"),
                    ("email_replied", "Replied"),
                    ("email_bounced", "Email bounced"),
                    ("unsubscribed", "Unsubscribed"),
                    ("consent_changed", "Consent changed"),
                    ("follow_up", "Follow-up"),
                    ("enrollment", "Campaign sequence"),
                ],
                max_length=32,
            ),
        ),
    ]
