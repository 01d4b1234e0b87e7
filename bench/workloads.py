"""The timed workloads: each Django path end to end, beside hand-written SQL doing the same work
on the same data through a bare psycopg cursor (the floor)."""

from __future__ import annotations

import importlib.util
import re
import time
import traceback
from dataclasses import dataclass

import psycopg

from bench.report import Row, format_table, percentile, time_pair
from bench.seed import BENCH_SLUG, LOGIN_EMAIL

# --- what is searched and filtered (chosen against the seeded vocabulary) ---------------------
SEARCHES = [
    # (label, query, what the first page must contain to prove the search ran)
    ("selective: rare skill", "fortran", "fortran"),
    ("common: 'engineer' (~70% of rows)", "engineer", "ngineer"),
    ("two words: 'kubernetes berlin'", "kubernetes berlin", "Berlin"),
    ("misspelled name (trigram)", "Katarzyna Kowalsky", "Kowalski"),
]
FACETS = {"skills": "python", "country": "Germany", "status": "active"}
DEEP_PAGES = 50
PAGE_SIZE = 50  # the list page's page size (read from the view module when it exposes one)
RANK_WEIGHTS = "{0.1,0.2,0.4,1.0}"
TRIGRAM_THRESHOLD = 0.2
RANK_LIMIT = 2000
FUZZY_LIMIT = 50
# The list page counts matches up to this many (COUNT_CAP in candidates/views/search.py).
COUNT_CAP = 1_000

# Columns the list page shows: the floor reads the same ones.
LIST_COLUMNS = (
    "c.id, c.first_name, c.last_name, c.email, c.headline, c.current_title, c.current_company,"
    " c.city, c.country, c.skills, c.tags, c.status, c.source, c.created_at,"
    " k.last_contacted_at, c.has_resume, c.owner_id, u.name AS owner_name, u.email AS owner_email"
)


@dataclass
class Context:
    url: str  # the bench database
    meta: dict
    args: object
    org_id: int = 0
    raw: psycopg.Connection | None = None
    client: object = None
    user: object = None


def _built(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


URL_ERRORS: dict[str, str] = {}


def _url(name: str, **kwargs) -> str | None:
    """The path of a named URL of the bench organisation, or None when it does not exist yet
    (or the URLconf does not import while others are mid-change: the reason is kept)."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse(name, kwargs={"org_slug": BENCH_SLUG, **kwargs})
    except NoReverseMatch:
        return None
    except Exception as exc:
        URL_ERRORS[name] = _short(exc)
        return None


def _not_built(row: Row, name: str) -> Row:
    row.status = "not built yet"
    if name in URL_ERRORS:
        row.note = f"URLconf did not import: {URL_ERRORS[name]}"
    return row


def _get(ctx: Context, path: str, params: dict | None = None, *, expect: str | None = None):
    response = ctx.client.get(path, params or {})
    if response.status_code != 200:
        raise AssertionError(f"GET {path} {params} answered {response.status_code}")
    body = response.content
    if expect is not None and expect.encode() not in body:
        raise AssertionError(f"GET {path} {params}: {expect!r} not on the page")
    return response


def _captured(fn) -> list[dict]:
    """The SQL statements (with their times) that `fn` runs through Django."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        fn()
    return captured.captured_queries


# --- search -------------------------------------------------------------------------------------
# The tsquery is written inline (as Django does), not in a CTE: the planner then folds it into
# a constant and uses the column statistics — a CTE hides it and a common term gets a bitmap
# scan of the whole GIN posting list.
TSQUERY = "(websearch_to_tsquery('simple', %(q)s) || websearch_to_tsquery('english', %(q)s))"
# The floor does what the list view asks of the database, statement by statement: the first
# 2,001 full-text matches, each ranked as it is found with the same ts_rank_cd weights plus
# the trigram similarity (their number is the count, more than 2,000 is the "bounded" hint);
# when fewer than FUZZY_BELOW, the typo step (names and e-mails starting like each word of the
# query, kept at trigram similarity ≥ 0.2; the trigram indexes when that finds nobody) and
# those rows' ranks; then the page: the best 51 by (rank, id), ordered in Python, read by id.
FUZZY_BELOW = 10
SIMILARITY = "greatest(similarity(c.search_name, %(text)s), similarity(c.email, %(text)s))"
RANK = f"ts_rank_cd('{RANK_WEIGHTS}', c.search_vector, {TSQUERY}) + {SIMILARITY}"
SEARCH_IDS_SQL = f"""
SELECT c.id, {RANK} FROM candidates_candidate c
WHERE c.organization_id = %(org)s AND c.merged_into_id IS NULL AND c.search_vector @@ {TSQUERY}
LIMIT {RANK_LIMIT + 1}
"""
SEARCH_RANKS_SQL = f"""
SELECT c.id, {RANK} FROM candidates_candidate c
WHERE c.organization_id = %(org)s AND c.merged_into_id IS NULL AND c.id = ANY(%(ids)s)
"""
SEARCH_PREFIX_SQL = f"""
SELECT c.id FROM candidates_candidate c
WHERE c.id IN (
    SELECT p.id FROM candidates_candidate p
    WHERE p.organization_id = %(org)s AND p.merged_into_id IS NULL
      AND p.search_vector @@ to_tsquery('simple', %(prefix)s)
    LIMIT 5000
) AND {SIMILARITY} >= {TRIGRAM_THRESHOLD}
ORDER BY {SIMILARITY} DESC, c.id DESC
LIMIT {FUZZY_LIMIT}
"""
SEARCH_TRIGRAM_SQL = f"""
SELECT c.id FROM candidates_candidate c
WHERE c.organization_id = %(org)s AND c.merged_into_id IS NULL
  AND (c.search_name %% %(text)s OR c.email %% %(text)s)
ORDER BY {SIMILARITY} DESC, c.id DESC
LIMIT {FUZZY_LIMIT}
"""
SEARCH_PAGE_SQL = f"""
SELECT {LIST_COLUMNS}
FROM candidates_candidate c LEFT JOIN crm_user u ON u.id = c.owner_id
LEFT JOIN candidates_candidatecontact k ON k.candidate_id = c.id
WHERE c.organization_id = %(org)s AND c.merged_into_id IS NULL AND c.id = ANY(%(ids)s)
"""


def _prefix_tsquery(text: str) -> str:
    words = re.findall(r"[^\W_]+", text)
    if "@" in text:
        words = words[:1]
    prefixes = [w[:3] if len(w) < 6 else w[:4] for w in words if len(w) >= 2]
    return " & ".join(f"'{p}':*A" for p in prefixes[:6])


def search_floor(ctx: Context, q: str):
    from candidates.search import FULL_TEXT_INDEX_TUPLE_COST

    text = " ".join(q.lower().split())
    params = {"q": q, "org": ctx.org_id, "text": text, "prefix": _prefix_tsquery(text)}

    def full_text(sql: str) -> list:
        # Planned as candidates/search.py plans it (`_full_text_plan`): one index entry costs
        # more, so a second large organisation does not get the organisation's bitmap ANDed in,
        # and a sequential scan starts at the first page (no synchronised scans).
        with ctx.raw.transaction():
            ctx.raw.execute(
                "SELECT set_config('cpu_index_tuple_cost', %s, true),"
                " set_config('synchronize_seqscans', 'off', true)",
                [FULL_TEXT_INDEX_TUPLE_COST],
            )
            return ctx.raw.execute(sql, params).fetchall()

    def run():
        ranks = dict(full_text(SEARCH_IDS_SQL)[:RANK_LIMIT])
        if len(ranks) < FUZZY_BELOW and len(text) >= 3:
            fuzzy = full_text(SEARCH_PREFIX_SQL)
            if not fuzzy:
                with ctx.raw.transaction():
                    ctx.raw.execute(
                        "SELECT set_config('pg_trgm.similarity_threshold', %s, true)",
                        [str(TRIGRAM_THRESHOLD)],
                    )
                    fuzzy = ctx.raw.execute(SEARCH_TRIGRAM_SQL, params).fetchall()
            extra = [row[0] for row in fuzzy if row[0] not in ranks]
            if extra:
                ranks.update(ctx.raw.execute(SEARCH_RANKS_SQL, {**params, "ids": extra}))
        best = sorted(((rank or 0.0, pk) for pk, rank in ranks.items()), reverse=True)
        page = [pk for _rank, pk in best[: PAGE_SIZE + 1]]
        ctx.raw.execute(SEARCH_PAGE_SQL, {**params, "ids": page}).fetchall()

    return run


def workload_search(ctx: Context) -> list[Row]:
    rows = []
    path = _url("candidates:list")
    built = path and _built("candidates.search", "candidates.filters") and _search_view_ready()
    for label, q, expect in SEARCHES:
        row = Row(f"search: {label}", target="p95 ≤ 80 ms", target_ms=80)
        floor = search_floor(ctx, q)
        if not built:
            _, row.floor = time_pair(None, floor, runs=ctx.args.runs, warmup=ctx.args.warmup)
            rows.append(_not_built(row, "candidates:list"))
            continue
        try:
            # The first request checks the page and records its SQL; it is also the warm-up.
            queries = _captured(lambda q=q, e=expect: _get(ctx, path, {"q": q}, expect=e))
            row.samples, row.floor = time_pair(
                lambda q=q: _get(ctx, path, {"q": q}),
                floor,
                runs=ctx.args.runs,
                warmup=ctx.args.warmup,
            )
            row.note = _queries_note(queries)
            if percentile(row.samples, 95) > 80:
                row.note += "; slow — see EXPLAIN below"
                ctx.meta["explain"].append((row.workload, _slowest_query(ctx, queries)))
        except Exception as exc:  # a failing workload is a row, not a crashed run
            row.status, row.note = "error", _short(exc)
        rows.append(row)
    return rows


def _search_view_ready() -> bool:
    """The list view applies `q` once candidates/views/search.py uses the search module."""
    spec = importlib.util.find_spec("candidates.views.search")
    if spec is None or spec.origin is None:
        return False
    with open(spec.origin, encoding="utf-8") as handle:
        source = handle.read()
    return "CandidateFilterSet" in source or "candidate_list_queryset" in source


# --- faceted list -------------------------------------------------------------------------------
FACET_WHERE = """c.organization_id = %(org)s AND c.merged_into_id IS NULL
  AND c.skills && %(skills)s::varchar[] AND upper(c.country) = upper(%(country)s)
  AND c.status = ANY(%(status)s)"""
# The list's capped count of the same matches, beside each page.
FACET_COUNT_SQL = f"""(
    SELECT count(*) FROM (
        SELECT 1 FROM candidates_candidate c
        WHERE {FACET_WHERE} LIMIT {COUNT_CAP + 1}
    ) capped
) AS total"""
FACET_FLOOR_SQL = f"""
SELECT {LIST_COLUMNS}, {FACET_COUNT_SQL}
FROM candidates_candidate c LEFT JOIN crm_user u ON u.id = c.owner_id
LEFT JOIN candidates_candidatecontact k ON k.candidate_id = c.id
WHERE {FACET_WHERE} {{after}}
ORDER BY c.created_at DESC, c.id DESC
LIMIT {PAGE_SIZE + 1}
"""

# The same page sorted by "Recently contacted": the floor reads the contacts' index in order.
CONTACTED_FLOOR_SQL = f"""
SELECT {LIST_COLUMNS}, {FACET_COUNT_SQL}
FROM candidates_candidatecontact k JOIN candidates_candidate c ON c.id = k.candidate_id
LEFT JOIN crm_user u ON u.id = c.owner_id
WHERE k.organization_id = %(org)s AND {FACET_WHERE}
ORDER BY k.last_contacted_at DESC, k.candidate_id DESC
LIMIT {PAGE_SIZE + 1}
"""


def facet_floor_params(ctx: Context) -> dict:
    return {
        "org": ctx.org_id,
        "skills": [FACETS["skills"]],
        "country": FACETS["country"],
        "status": [FACETS["status"]],
    }


def deep_cursor(ctx: Context) -> tuple | None:
    """(created_at, id) of the last row of page DEEP_PAGES - 1: page DEEP_PAGES starts after it."""
    sql = (
        f"SELECT c.created_at, c.id FROM candidates_candidate c WHERE {FACET_WHERE}"
        " ORDER BY c.created_at DESC, c.id DESC OFFSET %(offset)s LIMIT 1"
    )
    params = {**facet_floor_params(ctx), "offset": PAGE_SIZE * (DEEP_PAGES - 1) - 1}
    return ctx.raw.execute(sql, params).fetchone()


def _facet_floor(ctx: Context, sql: str, params: dict) -> list:
    # Planned as candidates/search.py plans its capped count (`count_capped`): without
    # sequential scans, which PostgreSQL costs as if a tenant's rows were spread evenly.
    with ctx.raw.transaction():
        ctx.raw.execute("SELECT set_config('enable_seqscan', 'off', true)")
        return ctx.raw.execute(sql, params).fetchall()


def workload_facets(ctx: Context) -> list[Row]:
    path = _url("candidates:list")
    built = path and _built("candidates.filters") and _search_view_ready()
    params = facet_floor_params(ctx)
    cursor = deep_cursor(ctx)
    page1_sql = FACET_FLOOR_SQL.format(after="")
    deep_sql = FACET_FLOOR_SQL.format(after="AND (c.created_at, c.id) < (%(at)s, %(id)s)")
    deep_params = {**params, "at": cursor[0], "id": cursor[1]} if cursor else params
    query = {"skills": FACETS["skills"], "country": FACETS["country"], "status": FACETS["status"]}
    deep_query = {**query, "after": f"{cursor[0].isoformat()},{cursor[1]}"} if cursor else query
    rows = []
    for label, sql, sql_params, http_params in [
        ("page 1", page1_sql, params, query),
        (f"page {DEEP_PAGES} (keyset)", deep_sql, deep_params, deep_query),
        (
            "page 1, recently contacted",
            CONTACTED_FLOOR_SQL,
            params,
            {**query, "sort": "-contacted"},
        ),
    ]:
        row = Row(f"facets (3 filters): {label}", target="p95 ≤ 60 ms", target_ms=60)
        floor = lambda sql=sql, p=sql_params: _facet_floor(ctx, sql, p)  # noqa: E731
        if not built:
            _, row.floor = time_pair(None, floor, runs=ctx.args.runs, warmup=ctx.args.warmup)
            rows.append(_not_built(row, "candidates:list"))
            continue
        try:
            queries = _captured(lambda p=http_params: _get(ctx, path, p))
            row.samples, row.floor = time_pair(
                lambda p=http_params: _get(ctx, path, p),
                floor,
                runs=ctx.args.runs,
                warmup=ctx.args.warmup,
            )
            row.note = _queries_note(queries)
            if percentile(row.samples, 95) > 60:
                row.note += "; slow — see EXPLAIN below"
                ctx.meta["explain"].append((row.workload, _slowest_query(ctx, queries)))
        except Exception as exc:
            row.status, row.note = "error", _short(exc)
        rows.append(row)
    return rows


# --- profile ------------------------------------------------------------------------------------
PROFILE_FLOOR_SQL = [
    "SELECT c.*, u.name, u.email, k.last_contacted_at FROM candidates_candidate c"
    " LEFT JOIN crm_user u ON u.id = c.owner_id"
    " LEFT JOIN candidates_candidatecontact k ON k.candidate_id = c.id"
    " WHERE c.organization_id = %(org)s AND c.id = %(id)s"
    " AND c.merged_into_id IS NULL",
    "SELECT a.*, u.name, u.email, n.body, n.pinned, n.created_at, n.updated_at, nu.name"
    " FROM candidates_activity a LEFT JOIN crm_user u ON u.id = a.actor_id"
    " LEFT JOIN candidates_note n ON n.id = a.note_id LEFT JOIN crm_user nu ON nu.id = n.author_id"
    " WHERE a.organization_id = %(org)s AND a.candidate_id = %(id)s"
    " ORDER BY a.occurred_at DESC, a.id DESC LIMIT 201",
    "SELECT n.*, u.name FROM candidates_note n LEFT JOIN crm_user u ON u.id = n.author_id"
    " WHERE n.organization_id = %(org)s AND n.candidate_id = %(id)s AND n.pinned"
    " ORDER BY n.created_at DESC, n.id DESC",
]


def workload_profile(ctx: Context) -> list[Row]:
    ids = ctx.meta["profile_ids"]
    row = Row("profile: 200-item timeline", target="p95 ≤ 60 ms", target_ms=60)
    position = {"i": 0}

    def next_id() -> int:
        position["i"] += 1
        return ids[position["i"] % len(ids)]

    def floor():
        params = {"org": ctx.org_id, "id": next_id()}
        for sql in PROFILE_FLOOR_SQL:
            ctx.raw.execute(sql, params).fetchall()

    if _url("candidates:detail", candidate_id=ids[0]) is None:
        _, row.floor = time_pair(None, floor, runs=ctx.args.runs, warmup=ctx.args.warmup)
        return [_not_built(row, "candidates:detail")]
    try:
        captured = [
            _captured(lambda i=i: _get(ctx, _url("candidates:detail", candidate_id=i)))
            for i in ids[:3]
        ]
        counts = {len(queries) for queries in captured}
        row.samples, row.floor = time_pair(
            lambda: _get(ctx, _url("candidates:detail", candidate_id=next_id())),
            floor,
            runs=ctx.args.runs,
            warmup=ctx.args.warmup,
        )
        body = _get(ctx, _url("candidates:detail", candidate_id=ids[0])).content.decode()
        items = len(re.findall(r"<li\b[^>]*timeline", body))
        row.note = (
            f"queries per page: {sorted(counts)} for 3 profiles"
            f" ({'constant' if len(counts) == 1 else 'NOT constant'}), "
            + f"{sum(float(q['time']) for q in captured[0]) * 1000:.0f} ms of SQL"
            + f"; {items} timeline <li> elements rendered"
        )
        if percentile(row.samples, 95) > 60:
            row.note += "; slow — see EXPLAIN below"
            ctx.meta["explain"].append((row.workload, _slowest_query(ctx, captured[0])))
    except Exception as exc:
        row.status, row.note = "error", _short(exc)
    return [row]


# --- helpers ------------------------------------------------------------------------------------
def _short(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 300 else text[:300] + "…"


def _queries_note(queries: list[dict]) -> str:
    sql_ms = sum(float(query["time"]) for query in queries) * 1000
    return f"{len(queries)} queries per page ({sql_ms:.0f} ms of SQL in the first request)"


def _slowest_query(ctx: Context, captured: list[dict]) -> str:
    """EXPLAIN ANALYZE of the slowest candidate SELECT among `captured` statements."""
    queries = sorted(captured, key=lambda q: float(q["time"]), reverse=True)
    for query in queries:
        sql = query["sql"]
        if sql.lstrip().upper().startswith("SELECT") and "candidates_" in sql:
            try:
                plan = explain_literal(ctx, sql)
            except Exception as exc:
                plan = f"(EXPLAIN failed: {_short(exc)})"
            return (
                f"slowest query ({float(query['time']) * 1000:.0f} ms in Django):\n{sql}\n\n{plan}"
            )
    return "(no candidate query captured)"


def explain_literal(ctx: Context, sql: str) -> str:
    with ctx.raw.transaction(force_rollback=True):
        ctx.raw.execute(
            "SELECT set_config('pg_trgm.similarity_threshold', %s, true)", [str(TRIGRAM_THRESHOLD)]
        )
        rows = ctx.raw.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql).fetchall()
    return "\n".join(row[0] for row in rows)


def setup_context(url: str, meta: dict, args) -> Context:
    from django.test import Client
    from django_scopes import scopes_disabled

    from crm.models import Organization, User

    ctx = Context(url=url, meta=meta, args=args)
    with scopes_disabled():
        ctx.org_id = Organization.objects.get(slug=BENCH_SLUG).pk
        ctx.user = User.objects.get(email=LOGIN_EMAIL)
    ctx.client = Client()
    ctx.client.force_login(ctx.user)
    # Never prepared (Django does not prepare either): psycopg prepares a statement on its
    # fifth run and PostgreSQL then switches to a generic plan, which for the facet floor is a
    # different, 10-50x slower plan than the one for its actual values.
    ctx.raw = psycopg.connect(url, autocommit=True, prepare_threshold=None)
    # The pages are timed in this process as a web worker serves them, and crm/wsgi.py freezes
    # what loading left alive (crm/lifetime.py): without it, full collections walk Django's
    # ~180,000 objects in the middle of a timed request.
    from crm.lifetime import freeze_loaded_objects

    freeze_loaded_objects()
    return ctx


def run_all(*, url: str, meta: dict, args, only: list[str]) -> int:
    from bench import served
    from bench.board import workload_board
    from bench.duplicates import workload_duplicates
    from bench.imports import clear_previous_import, physical_anchor, workload_import
    from bench.pools import workload_pools
    from bench.send import workload_send
    from bench.tracking import workload_tracking

    ctx = setup_context(url, meta, args)
    ctx.meta["explain"] = []
    clear_previous_import(ctx)
    print("\nphysical anchors:", flush=True)
    anchor = physical_anchor(ctx)
    print(
        f"  raw COPY of a {anchor['rows']:,}-row CSV into a plain table (no trigger, no indexes):"
        f" {anchor['rows'] / anchor['seconds']:,.0f} rows/s ({anchor['seconds']:.1f} s)"
    )
    ctx.meta["anchor"] = anchor
    main, small = meta["copy_main"], meta["copy_small"]
    print(
        f"  COPY into candidates with the search trigger, indexes dropped (seeding):"
        f" {main['rows'] / main['seconds']:,.0f} rows/s"
    )
    if small["rows"]:
        print(
            f"  COPY into candidates with the search trigger, all {meta['indexes']} indexes live"
            f" (seeding): {small['rows'] / small['seconds']:,.0f} rows/s"
        )
    table: list[Row] = []
    steps = {
        "search": workload_search,
        "facets": workload_facets,
        "profile": workload_profile,
        "served": served.workload_served,
        "pools": workload_pools,
        "board": workload_board,
        "duplicates": workload_duplicates,
        "import": workload_import,
        "send": workload_send,
        "tracking": workload_tracking,
    }
    for name in only:
        print(f"running {name}…", flush=True)
        started = time.perf_counter()
        try:
            table.extend(steps[name](ctx))
        except Exception as exc:
            traceback.print_exc()
            table.append(Row(name, status="error", note=_short(exc)))
        print(f"  {name}: {time.perf_counter() - started:.0f} s", flush=True)
    print()
    print(format_table(table))
    for workload, plan in ctx.meta["explain"]:
        print(f"\n--- EXPLAIN ANALYZE for '{workload}' ---\n{plan}")
    # A verdict may carry a figure ("MISS (12)"); a workload that could not be measured (an
    # error, a missing tool) is neither a pass nor a miss.
    misses = [row.workload for row in table if row.verdict.startswith("MISS")]
    unmeasured = [
        row for row in table if not row.verdict.startswith(("PASS", "MISS")) and row.verdict != "-"
    ]
    passed = len(table) - len(misses) - len(unmeasured)
    print(f"\n{passed}/{len(table)} rows without a MISS.")
    if unmeasured:
        print(
            f"{len(unmeasured)} not measured: "
            + ", ".join(f"{row.workload} ({row.verdict})" for row in unmeasured)
        )
    return 0
