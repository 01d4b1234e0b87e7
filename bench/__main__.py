"""`make bench`: seed a separate benchmark database with COPY, then time the workloads.

    python -m bench                      # seed once (skipped when already there), run everything
    python -m bench --reseed             # drop and re-create the benchmark database first
    python -m bench --only search,facets # a subset of the workloads
    python -m bench --candidates 100000  # a smaller benchmark organisation (re-seeds)

DATABASE_URL names the server; the benchmark uses the database `<name>_bench` on it, created when
missing. `make bench` exports DATABASE_URL / REDIS_URL of the embedded services.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime

WORKLOADS = [
    "search",
    "facets",
    "profile",
    "served",
    "pools",
    "board",
    "duplicates",
    "import",
    "send",
    "tracking",
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--reseed", action="store_true", help="drop and re-seed the bench DB")
    parser.add_argument("--candidates", type=int, default=1_000_000, help="benchmark org size")
    parser.add_argument("--small", type=int, default=50_000, help="size of each small org")
    parser.add_argument("--small-orgs", type=int, default=3)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per workload")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20, help="seconds per served run")
    parser.add_argument("--clients", type=int, default=16, help="concurrent served clients")
    parser.add_argument(
        "--served-gunicorn",
        default="",
        help="served workload's server as WORKERSxTHREADS[:CLASS] (default 5x1:sync)",
    )
    parser.add_argument("--import-rows", type=int, default=1_000_000)
    parser.add_argument(
        "--send-recipients", type=int, default=100_000, help="size of the send workload's broadcast"
    )
    parser.add_argument("--send-timeout", type=float, default=900, help="seconds per broadcast")
    parser.add_argument("--burst-clients", type=int, default=32, help="tracking burst clients")
    parser.add_argument(
        "--tracking-server",
        choices=("asgi", "wsgi"),
        default="asgi",
        help="tracking burst through crm.asgi on uvicorn's worker (the tracking process) or "
        "crm.wsgi on gunicorn's own workers",
    )
    parser.add_argument(
        "--burst-gunicorn",
        default="",
        help="tracking burst server as WORKERSxTHREADS[:CLASS], e.g. 2x4:gthread or 3x1:sync "
        "(wsgi), 3 (asgi: workers)",
    )
    parser.add_argument(
        "--only", default=",".join(WORKLOADS), help=f"comma-separated subset of {WORKLOADS}"
    )
    parser.add_argument("--seed-only", action="store_true", help="seed, then stop")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    base_url = os.environ.get("DATABASE_URL")
    if not base_url:
        print("bench: DATABASE_URL is not set; run `make bench`.", file=sys.stderr)
        return 2

    from bench import db
    from bench.seed import Spec, print_seed_summary, seed

    url = db.bench_url(base_url)
    spec = Spec(main=args.candidates, small=args.small, small_orgs=args.small_orgs)
    meta = db.read_meta(url)
    need_seed = args.reseed or meta.get("spec") != asdict(spec)
    print(f"Rapport benchmark — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs")
    print(f"bench database: {db.database_name(url)}")
    if need_seed:
        reason = "--reseed" if args.reseed else ("not seeded" if not meta else "spec changed")
        print(f"seeding ({reason}): re-creating {db.database_name(url)}…", flush=True)
        db.create_database(url, drop=True)

    db.point_django_at(url)
    import django

    django.setup()
    from django.core.management import call_command

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    if need_seed:
        print(f"  migrated in {time.perf_counter() - t0:.1f} s", flush=True)
        meta = seed(url, spec)
    else:
        print("seed data present (BENCH_ARGS=--reseed to re-create it)")
    print_seed_summary(meta)
    if args.seed_only:
        return 0

    from bench.workloads import run_all

    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(only) - set(WORKLOADS)
    if unknown:
        print(
            f"bench: unknown workloads {sorted(unknown)}; choose from {WORKLOADS}", file=sys.stderr
        )
        return 2
    return run_all(url=url, meta=meta, args=args, only=only)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
