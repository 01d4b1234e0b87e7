"""Statements whose parameters are sent apart from the SQL ("bound on the server"), and planner
settings for the few statements whose plan must not depend on the table's statistics.

Django's PostgreSQL cursor quotes every parameter into the statement on the client: a batch
statement over thousands of ids, keys and times is then a long string that psycopg splits at
each placeholder and PostgreSQL parses afresh. The batch writers of the outbox, the tracking
flush and the engagement events pass their rows as a few arrays instead, unnested in SQL; with
`%b` placeholders psycopg sends each array in PostgreSQL's binary format (no text escaping per
element).
"""

from contextlib import contextmanager

import psycopg
from django.db import connection, transaction


@contextmanager
def server_binding_cursor():
    """A Django cursor (query logging, error translation, the connection's transaction) over a
    psycopg cursor that sends parameters apart from the SQL instead of quoting them into it."""
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    try:
        if connection.queries_logged:
            yield connection.make_debug_cursor(raw)
        else:
            yield connection.make_cursor(raw)
    finally:
        raw.close()


def server_bound(sql: str, params: list) -> list[tuple]:
    """Run one statement with its parameters bound on the server; its rows, if it returns any."""
    with server_binding_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


@contextmanager
def planner_settings(**values: str):
    """Run the queries inside with these planner settings (`enable_sort="off"`, …), local to a
    transaction; the session's own values are back afterwards, also when a query fails. One
    statement sets them all and one puts them back."""
    # Only placeholders are repeated into the SQL; names and values are parameters.
    change = ", ".join(["current_setting(%s), set_config(%s, %s, true)"] * len(values))
    restore = ", ".join(["set_config(%s, %s, true)"] * len(values))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {change}",
            [item for key, new in values.items() for item in (key, key, new)],
        )
        previous = cursor.fetchone()[0::2]
        yield
        cursor.execute(
            f"SELECT {restore}",
            [item for key, old in zip(values, previous, strict=True) for item in (key, old)],
        )
