"""Role families (per organisation, like email topics): what candidates say they are interested
in and what campaigns target. Every existing organisation gets the default families; a new
one gets them on first use (services/role_families.role_families_ensure_defaults)."""

import django.contrib.postgres.fields
import django.db.models.deletion
import django.db.models.functions.text
from django.db import migrations, models


# Frozen here: the defaults as they were when this migration was written.
DEFAULT_ROLE_FAMILIES = [
    ("engineering", "Engineering"),
    ("data", "Data & analytics"),
    ("product", "Product"),
    ("design", "Design"),
    ("sales", "Sales"),
    ("marketing", "Marketing"),
    ("operations", "Operations"),
    ("people", "People & HR"),
    ("finance", "Finance"),
]


def create_defaults(apps, schema_editor):
    Organization = apps.get_model("crm", "Organization")
    RoleFamily = apps.get_model("campaigns", "RoleFamily")
    with_families = RoleFamily.objects.values("organization_id")
    for organization_id in Organization.objects.exclude(pk__in=with_families).values_list(
        "pk", flat=True
    ):
        RoleFamily.objects.bulk_create(
            [
                RoleFamily(organization_id=organization_id, key=key, name=name, position=index)
                for index, (key, name) in enumerate(DEFAULT_ROLE_FAMILIES)
            ],
            ignore_conflicts=True,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0011_organization_indexes_led_by_composites"),
        ("crm", "0002_organization_branding"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="interest_include_unstated",
            field=models.BooleanField(
                default=True,
                verbose_name="also include candidates who haven't told us their interests",
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="interest_locations",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(max_length=60), blank=True, default=list, size=None
            ),
        ),
        migrations.AddField(
            model_name="campaign",
            name="interest_role_families",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(max_length=20),
                blank=True,
                default=list,
                help_text="RoleFamily keys.",
                size=None,
            ),
        ),
        migrations.AddField(
            model_name="candidateemailpreference",
            name="interested_role_families",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(max_length=20),
                blank=True,
                default=list,
                help_text="RoleFamily keys.",
                size=None,
            ),
        ),
        migrations.CreateModel(
            name="RoleFamily",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.SlugField(max_length=20)),
                ("name", models.CharField(max_length=100)),
                ("position", models.PositiveSmallIntegerField(default=0)),
                ("archived_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, to="crm.organization"
                    ),
                ),
            ],
            options={
                "ordering": ["position", "name"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("organization", "key"), name="rolefamily_key_unique"
                    ),
                    models.UniqueConstraint(
                        models.F("organization"),
                        django.db.models.functions.text.Lower("name"),
                        name="rolefamily_name_unique",
                    ),
                ],
            },
        ),
        migrations.RunPython(create_defaults, migrations.RunPython.noop),
    ]
