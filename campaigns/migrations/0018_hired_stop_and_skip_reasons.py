"""A stop reason and a skip reason for candidates marked Hired (`hired`): campaign email about
opportunities no longer goes to them. Choices only: no change to the tables."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0017_auto_join_activity_pool_id"),
    ]

    operations = [
        migrations.AlterField(
            model_name="enrollment",
            name="stop_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("unsubscribed", "Unsubscribed"),
                    ("suppressed", "Suppressed address"),
                    ("do_not_contact", "Do not contact"),
                    ("bounced", "Bounced"),
                    ("complained", "Complained"),
                    ("replied", "Replied"),
                    ("removed", "Removed by a recruiter"),
                    ("cancelled", "Campaign cancelled"),
                    ("no_email", "No email address"),
                    ("engaged", "Engaged, so the next step was not needed"),
                    ("stage_won", "Moved to a won stage"),
                    ("stage_lost", "Moved to a lost stage"),
                    ("merged", "Merged into another profile"),
                    ("hired", "Hired"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="message",
            name="skip_reason",
            field=models.CharField(
                blank=True,
                choices=[
                    ("suppressed", "Suppressed address"),
                    ("unsubscribed", "Unsubscribed"),
                    ("do_not_contact", "Do not contact"),
                    ("topic_opted_out", "Opted out of this topic"),
                    ("paused", "Paused emails"),
                    ("no_email", "No email address"),
                    ("campaign_cancelled", "Campaign cancelled"),
                    ("enrollment_stopped", "Removed from the campaign"),
                    ("no_consent", "No recorded consent"),
                    ("merged", "Merged into another profile"),
                    ("candidate_deleted", "Candidate deleted"),
                    ("hired", "Hired"),
                ],
                max_length=20,
            ),
        ),
    ]
