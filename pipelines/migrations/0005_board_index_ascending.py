"""The board's index in ascending order, read backwards for "newest first".

Materialising a smart pool inserts hundreds of thousands of memberships into one column, each
newer (entered_stage_at, id) than the last. In a descending index every one of them lands at
the left end of the column's range, and each page split leaves two half-empty pages; in an
ascending index they land at the right end, where PostgreSQL splits a page so that it stays
full. Measured on 306,864 inserts: 37.5 MB of index and 0.89 s of CPU descending, 21.0 MB and
0.66 s ascending. The board's column queries (ORDER BY entered_stage_at DESC, id DESC, with or
without the keyset condition) become a backward scan of the same range, and the counts stay an
index-only GROUP BY.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0004_membership_tenant_fks"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="poolmembership", name="poolmember_board"),
        migrations.AddIndex(
            model_name="poolmembership",
            index=models.Index(
                fields=["organization", "pool", "stage", "entered_stage_at", "id"],
                include=["added_at"],
                name="poolmember_board",
            ),
        ),
    ]
