"""Indexes that every organisation's rows rely on, and none that only cost writes."""

import pytest
from django.db import connection

# Tables written per candidate or per email in bulk (imports, smart pools, sends, tracking):
# an index on organization_id alone is one more write per row there, and redundant when a
# composite index leads with it.
BULK_WRITTEN = [
    "analytics_engagementevent",
    "campaigns_enrollment",
    "campaigns_message",
    "candidates_activity",
    "candidates_candidate",
    "pipelines_poolmembership",
]


def _indexes_by_table() -> dict[str, list[list[str]]]:
    """Each table's indexes as their column lists (expression columns as "<expr>")."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.relname, i.indexrelid,
                   array_agg(coalesce(a.attname, '<expr>') ORDER BY k.ord)
            FROM pg_index i
            JOIN pg_class t ON t.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
            CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
            LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            GROUP BY t.relname, i.indexrelid
            """
        )
        tables: dict[str, list[list[str]]] = {}
        for table, _, columns in cursor.fetchall():
            tables.setdefault(table, []).append(list(columns))
    return tables


def _tenant_tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'organization_id'"
        )
        return sorted(row[0] for row in cursor.fetchall())


@pytest.mark.django_db
def test_every_tenant_table_finds_an_organisations_rows_by_index():
    """Deleting an organisation cascades by organization_id, and every scoped query filters on
    it: some index of each tenant table leads with it."""
    indexes = _indexes_by_table()
    tables = _tenant_tables()
    assert set(BULK_WRITTEN) <= set(tables)
    missing = [t for t in tables if not any(c[0] == "organization_id" for c in indexes[t])]
    assert missing == []


@pytest.mark.django_db
@pytest.mark.parametrize("table", BULK_WRITTEN)
def test_bulk_written_tables_have_no_index_on_the_organisation_alone(table):
    indexes = _indexes_by_table()[table]
    assert ["organization_id"] not in indexes
    assert any(c[0] == "organization_id" and len(c) > 1 for c in indexes)
