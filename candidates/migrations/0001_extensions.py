from django.contrib.postgres.operations import BtreeGinExtension, TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    """pg_trgm for typo-tolerant name/email matching; btree_gin so GIN indexes can lead with
    organization_id (every composite index starts with the tenant)."""

    dependencies: list = []

    operations = [TrigramExtension(), BtreeGinExtension()]
