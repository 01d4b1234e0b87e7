from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0002_sequences"),
        ("campaigns", "0003_deliverability"),
    ]

    operations = []
