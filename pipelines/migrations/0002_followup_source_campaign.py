from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("pipelines", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="followup",
            name="source",
            field=models.CharField(
                choices=[
                    ("manual", "Set by a recruiter"),
                    ("not_now", "Back from “not now”"),
                    ("campaign", "A task step of a campaign sequence"),
                ],
                default="manual",
                max_length=10,
            ),
        ),
    ]
