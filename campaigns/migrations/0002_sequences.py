"""Campaign sequences: sending window, auto-join from a pool, pause time; step conditions and
task notes; the stop reasons of sequences."""

import datetime

import django.contrib.postgres.fields
import django.core.validators
import django.db.models.deletion
from django.db import migrations, models

import campaigns.models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0001_initial"),
        ("pipelines", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="window_days",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.PositiveSmallIntegerField(
                    validators=[django.core.validators.MaxValueValidator(6)]
                ),
                blank=True,
                default=campaigns.models.weekdays_default,
                size=None,
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="window_start",
            field=models.TimeField(default=datetime.time(9, 0)),
        ),
        migrations.AddField(
            model_name="campaign",
            name="window_end",
            field=models.TimeField(default=datetime.time(17, 0)),
        ),
        migrations.AddField(
            model_name="campaign",
            name="use_candidate_time_zone",
            field=models.BooleanField(
                default=True, verbose_name="send in the candidate's time zone when known"
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="auto_join_pool",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="auto_join_campaigns",
                to="pipelines.pool",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="paused_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="step",
            name="condition",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "Always"),
                    ("not_opened", "Only if the previous email was not opened"),
                    ("not_clicked", "Only if no link in the previous email was clicked"),
                    ("not_replied", "Only if the previous email got no reply"),
                ],
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="step",
            name="task_note",
            field=models.CharField(blank=True, max_length=500),
        ),
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
                ],
                max_length=20,
            ),
        ),
    ]
