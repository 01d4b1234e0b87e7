#!/usr/bin/env python
"""Django's command-line utility.

In development, when DATABASE_URL or REDIS_URL is not set, the command runs against the
embedded PostgreSQL and Redis under .data/ (started if needed and stopped again afterwards if
this command started them), exactly as `make run` / `make test` do; so `python manage.py
makemigrations --check` or `shell` work from a plain checkout."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    from django.core.management import execute_from_command_line

    development = os.environ.get("RAPPORT_ENV", "development") == "development"
    if development and not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
        from crm.devservices import ServiceError, running_services

        try:
            with running_services() as env:
                os.environ.update(env)
                execute_from_command_line(sys.argv)
        except ServiceError as error:
            sys.exit(f"rapport: {error}")
        return
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
