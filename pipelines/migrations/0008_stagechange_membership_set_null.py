"""Stage history: the database itself unlinks a stage change from a membership that goes.

StageChange.membership is on_delete=SET_NULL, but Django only emulates that: it nulls the
history rows it can see, then deletes the membership, and the database's foreign key (NO
ACTION, checked at commit) refuses the commit when a move committed a new history row for that
membership in between. A card removed (or a smart pool member leaving at a refresh) while
someone moved it was a 500, or a whole refresh rolled back. With ON DELETE SET NULL in the
database the row is unlinked whenever it was written.

Django 5.2 cannot declare a database-level on_delete, so the foreign key is re-created here
under its own (generated) name, still DEFERRABLE INITIALLY DEFERRED; the model is unchanged.
A later migration that re-creates this foreign key must keep ON DELETE SET NULL.
"""

from django.db import migrations

TABLE = "pipelines_stagechange"


def _recreate(on_delete: str) -> str:
    """Drop the foreign key on pipelines_stagechange.membership_id, whatever its name, and
    create it again under that name with `on_delete`."""
    return f"""
        DO $$
        DECLARE
            foreign_key_name text;
        BEGIN
            SELECT constraint_row.conname INTO STRICT foreign_key_name
            FROM pg_constraint AS constraint_row
            JOIN pg_attribute AS column_row
              ON column_row.attrelid = constraint_row.conrelid
             AND column_row.attnum = constraint_row.conkey[1]
            WHERE constraint_row.conrelid = '{TABLE}'::regclass
              AND constraint_row.contype = 'f'
              AND cardinality(constraint_row.conkey) = 1
              AND column_row.attname = 'membership_id';
            EXECUTE format('ALTER TABLE {TABLE} DROP CONSTRAINT %I', foreign_key_name);
            EXECUTE format(
                'ALTER TABLE {TABLE} ADD CONSTRAINT %I FOREIGN KEY (membership_id)'
                ' REFERENCES pipelines_poolmembership (id) {on_delete}'
                ' DEFERRABLE INITIALLY DEFERRED',
                foreign_key_name
            );
        END
        $$;
    """  # noqa: S608 - the table name and the ON DELETE clause are this file's constants


class Migration(migrations.Migration):
    dependencies = [
        ("pipelines", "0007_pool_archived_at"),
    ]

    operations = [
        # Lists: each item runs as one statement, not split on its semicolons.
        migrations.RunSQL(sql=[_recreate("ON DELETE SET NULL")], reverse_sql=[_recreate("")]),
    ]
