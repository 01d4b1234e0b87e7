"""Auto-join batches: the candidates who entered a pool that a launched sequence joins from,
stored in the pool change's transaction until the `campaigns.sequence_auto_join` task (or,
when that task is lost, the dispatcher) has enrolled them."""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0018_hired_stop_and_skip_reasons"),
        ("crm", "0003_invitation_email_status"),
        ("pipelines", "0008_stagechange_membership_set_null"),
    ]

    operations = [
        migrations.CreateModel(
            name="AutoJoinBatch",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "candidate_ids",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.BigIntegerField(), size=None
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to="crm.organization"
                    ),
                ),
                (
                    "pool",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="pipelines.pool",
                    ),
                ),
            ],
        ),
    ]
