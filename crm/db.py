"""Statements whose parameters are sent apart from the SQL ("bound on the server").

Django's PostgreSQL cursor quotes every parameter into the statement on the client: a batch
statement over thousands of ids, keys and times is then a long string that psycopg splits at
each placeholder and PostgreSQL parses afresh. The batch writers of the outbox, the tracking
flush and the engagement events pass their rows as a few arrays instead, unnested in SQL; with
`%b` placeholders psycopg sends each array in PostgreSQL's binary format (no text escaping per
element).
"""

from contextlib import contextmanager

import psycopg
from django.db import connection


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
