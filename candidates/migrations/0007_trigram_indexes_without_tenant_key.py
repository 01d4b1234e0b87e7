"""Back to single-column trigram indexes: the tenant-led ones of 0006 made every nested-loop
probe of the duplicate check read the organisation's whole posting list (minutes for a
10,000-row import batch), and the planner did not use their tenant key at a million rows."""

import django.contrib.postgres.indexes
from django.conf import settings
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("candidates", "0006_search_facet_indexes"),
        ("crm", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="candidate",
            name="cand_org_name_trgm",
        ),
        migrations.RemoveIndex(
            model_name="candidate",
            name="cand_org_email_trgm",
        ),
        migrations.AddIndex(
            model_name="candidate",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass("search_name", name="gin_trgm_ops"),
                name="cand_name_trgm",
            ),
        ),
        migrations.AddIndex(
            model_name="candidate",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.indexes.OpClass("email", name="gin_trgm_ops"),
                name="cand_email_trgm",
            ),
        ),
    ]
