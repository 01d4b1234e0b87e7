"""The candidate search query builder, keyset pagination and result highlighting.

Full-text search runs on the stored, GIN-indexed `search_vector` (kept current by the database
trigger of migration 0003) with ``websearch_to_tsquery('simple', q) ||
websearch_to_tsquery('english', q)``: names, emails and places are matched as written, prose
with English stemming.

Ranking is bounded: a common term can match most of a million rows, and ranking all of them
means reading every matching row. Instead the index hands us the first
``CANDIDATE_SEARCH_RANK_LIMIT`` matches (a ``LIMIT`` inside a subquery) and only those are
ranked and ordered. The list page says so when the bound is hit.

Typo tolerance runs only when full text finds few rows (fewer than
``CANDIDATE_SEARCH_FUZZY_BELOW``): a misspelled name or email matches nothing, a real word
matches plenty. pg_trgm similarity over a whole organisation is expensive (the trigram index
is lossy, so every candidate row is read and rechecked: 0.2 to 1 s at a million), so the fuzzy
step first looks among a bounded set found through the full-text index — names and emails
(weight A) starting like every word of the query ("Jonh Smiht" → ``jon:*A & smih:*A``) —
and keeps those at pg_trgm similarity ≥ ``TRIGRAM_THRESHOLD`` to name or email. Only when
that finds nobody (a typo in the first letters) does it fall back to the trigram indexes
(``%`` on `search_name` and `email`). Either way "Jonh Smiht" finds John Smith.

The page, its count and the "bounded" hint all come from one list of ids fetched once
(`search_matches`), each id with its rank computed as the row was found: the list view does not
read the full-text matches again to count them, nor to rank them (`ranked_page` orders a page
in Python and reads only its rows).

Many tenants share the table, and the full-text id query carries the organisation filter.
PostgreSQL builds at most one bitmap per table and chooses it by total cost, ignoring the
``LIMIT``: when a second large organisation shares the table, it ANDs the full-text bitmap
with a bitmap of every candidate of the organisation (a million btree entries, 60 to 80 ms
here) to save heap reads that the ``LIMIT`` would never make. `_full_text_plan` raises the
cost of an index entry for that one query so the organisation is checked on the rows the
full-text index returns instead; a small organisation's bitmap is still worth ANDing and
still is (docs/performance.md, "Search with two large organisations").

For a term most rows match, the cheapest plan is a sequential scan that stops at the bound, so
which candidates are ranked depends on where the scan starts. `_full_text_plan` also turns
synchronised scans off for that query: the scan starts at the first page every time, and the
same search finds the same candidates (and pages through them consistently).
"""

import functools
import re
from dataclasses import dataclass, field, replace
from datetime import UTC
from html import escape as html_escape
from urllib.parse import quote, unquote

from django.conf import settings
from django.contrib.postgres.search import SearchQuery, SearchRank, TrigramSimilarity
from django.core.exceptions import EmptyResultSet
from django.db import connection, connections, transaction
from django.db.models import F, FloatField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Greatest
from django.utils.dateparse import parse_datetime
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from crm.db import planner_settings

# Weights for ts_rank_cd, in PostgreSQL's order {D, C, B, A}: a name or email match (A) counts
# ten times a resume match (D).
RANK_WEIGHTS = [0.1, 0.2, 0.4, 1.0]
# pg_trgm's default threshold (0.3) misses two transposed letters in a short name
# ("jonh smiht" ~ "john smith" is 0.29); 0.2 still keeps noise out.
TRIGRAM_THRESHOLD = 0.2


def _rank_limit(limit: int | None) -> int:
    return limit or getattr(settings, "CANDIDATE_SEARCH_RANK_LIMIT", 2000)


def _fuzzy_limit() -> int:
    return getattr(settings, "CANDIDATE_SEARCH_FUZZY_LIMIT", 50)


def _fuzzy_below() -> int:
    """Typo tolerance runs when full text finds fewer candidates than this."""
    return getattr(settings, "CANDIDATE_SEARCH_FUZZY_BELOW", 10)


# How many rows the prefix step of typo tolerance reads at most (each is a heap fetch).
FUZZY_SCAN_LIMIT = 5000
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def search_query(q: str) -> SearchQuery:
    return SearchQuery(q, config="simple", search_type="websearch") | SearchQuery(
        q, config="english", search_type="websearch"
    )


def _fuzzy_text(q: str) -> str:
    return " ".join(q.lower().split())[:200]


def _prefix_query(text: str) -> str | None:
    """A raw tsquery for names and emails (weight A) starting like each word of `text`:
    "jonh smiht" → ``'jon':*A & 'smih':*A``. An email is one token, so for an email-like
    query only its first word can be a prefix. None when there is no usable word."""
    words = _WORD.findall(text)
    if "@" in text:
        words = words[:1]
    prefixes = [word[:3] if len(word) < 6 else word[:4] for word in words if len(word) >= 2]
    if not prefixes:
        return None
    return " & ".join(f"'{prefix}':*A" for prefix in prefixes[:6])


def _similarity(text: str):
    return Greatest(TrigramSimilarity("search_name", text), TrigramSimilarity("email", text))


# Ten times PostgreSQL's default: the planner then stops ANDing a bitmap of a large share of the
# table (measured: it stops between 0.02 and 0.03 with two organisations of a million each).
FULL_TEXT_INDEX_TUPLE_COST = "0.05"


def _full_text_plan():
    """Plan the queries inside with `FULL_TEXT_INDEX_TUPLE_COST` (see the module docstring),
    and have a sequential scan start at the table's first page: a ``LIMIT``ed scan that joins
    another one in progress (PostgreSQL's synchronised scans, on for tables larger than a
    quarter of shared_buffers) starts where that one is, so the bounded candidates of a common
    term, and the first page of its results, changed on every reload."""
    return planner_settings(
        cpu_index_tuple_cost=FULL_TEXT_INDEX_TUPLE_COST, synchronize_seqscans="off"
    )


def _fuzzy_ids(queryset: QuerySet, q: str) -> list[int]:
    """Ids of the best trigram matches of `q` on name and email (typo tolerance), best first."""
    text = _fuzzy_text(q)
    if len(text) < 3:
        return []
    prefix = _prefix_query(text)
    if prefix is not None:
        # A bounded candidate set from the full-text index, filtered by similarity.
        scanned = queryset.filter(
            search_vector=SearchQuery(prefix, config="simple", search_type="raw")
        ).order_by()[:FUZZY_SCAN_LIMIT]
        with _full_text_plan():
            found = list(
                queryset.filter(id__in=scanned.values("id"))
                .annotate(similarity=_similarity(text))
                .filter(similarity__gte=TRIGRAM_THRESHOLD)
                .order_by("-similarity", "-id")
                .values_list("id", flat=True)[: _fuzzy_limit()]
            )
        if found:
            return found
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Local to this transaction: other queries keep pg_trgm's default threshold.
            cursor.execute(
                "SELECT set_config('pg_trgm.similarity_threshold', %s, true)",
                [str(TRIGRAM_THRESHOLD)],
            )
        return list(
            queryset.filter(Q(search_name__trigram_similar=text) | Q(email__trigram_similar=text))
            .annotate(similarity=_similarity(text))
            .order_by("-similarity", "-id")
            .values_list("id", flat=True)[: _fuzzy_limit()]
        )


@dataclass(frozen=True)
class SearchMatches:
    """What a search found, fetched once: the ids to rank (the first `limit` full-text
    matches in index order, then trigram matches when full text found few), whether more
    full-text matches exist than were ranked, and each id's rank (`search_rank`), computed as
    the rows were found (`ranked_page` orders a page from them)."""

    ids: list[int]
    bounded: bool
    ranks: dict[int, float] = field(default_factory=dict)


def search_rank(q: str):
    """The relevance of a candidate to `q`: full-text rank (names and emails count most) plus
    the trigram similarity of the query to the name or email (typos)."""
    return Cast(
        SearchRank(F("search_vector"), search_query(q), weights=RANK_WEIGHTS, cover_density=True)
        + _similarity(_fuzzy_text(q)),
        FloatField(),
    )


def _rows(queryset: QuerySet) -> list[tuple]:
    """`queryset`'s rows as the database driver returns them. For up to 2,000 (id, rank) pairs,
    the ORM's per-row iteration and float converter cost more than reading them."""
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:  # e.g. `.none()`: nothing to ask the database
        return []
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def search_matches(
    queryset: QuerySet, q: str, *, limit: int | None = None, ranked: bool = False
) -> SearchMatches:
    """What `q` finds in `queryset` (see `SearchMatches`); with `ranked`, each id's rank too,
    computed as the row is found: each row is read once (on the list page, a second query
    reading the 2,000 rows again to rank them took longer than the ranking itself). Without
    it (a smart pool's membership, a bulk selection) nothing is ranked."""
    bound = _rank_limit(limit)
    matching = queryset.filter(search_vector=search_query(q)).order_by()
    with _full_text_plan():
        if ranked:
            found = _rows(
                matching.annotate(rank=search_rank(q)).values_list("id", "rank")[: bound + 1]
            )
        else:
            found = [(pk, None) for pk in matching.values_list("id", flat=True)[: bound + 1]]
    bounded = len(found) > bound
    ranks = dict(found[:bound])
    ids = list(ranks)
    # Typo tolerance only when full text found few: a bounded result already has more matches
    # than it ranks (with a small `limit`, adding trigram matches would pass the bound).
    if not bounded and len(ids) < _fuzzy_below():
        fuzzy = [pk for pk in _fuzzy_ids(queryset, q) if pk not in ranks]
        if fuzzy and ranked:
            ranks.update(
                queryset.filter(id__in=fuzzy)
                .order_by()
                .annotate(rank=search_rank(q))
                .values_list("id", "rank")
            )
        ids += fuzzy
    return SearchMatches(ids=ids, bounded=bounded, ranks=ranks if ranked else {})


def search_filter(queryset: QuerySet, q: str) -> QuerySet:
    """`queryset` narrowed to every candidate matching `q`, unranked and unbounded: what a
    smart pool holds and a campaign audience reaches is everyone its saved search finds, not
    the first CANDIDATE_SEARCH_RANK_LIMIT matches the list ranks. Typo tolerance as on the
    list: when full text finds fewer than CANDIDATE_SEARCH_FUZZY_BELOW, the best trigram
    matches are in too. The full-text condition stays in SQL (a term can match most of a
    million rows), so checking one candidate is one indexed lookup."""
    matching = queryset.filter(search_vector=search_query(q))
    below = _fuzzy_below()
    with _full_text_plan():
        few = list(matching.order_by().values_list("id", flat=True)[:below])
    if len(few) >= below:
        return matching
    ids = few + [pk for pk in _fuzzy_ids(queryset, q) if pk not in few]
    return queryset.filter(id__in=ids)


def candidate_search(
    queryset: QuerySet,
    q: str,
    *,
    limit: int | None = None,
    matches: SearchMatches | None = None,
) -> QuerySet:
    """`queryset` narrowed to candidates matching `q`, annotated with `rank` and ordered by it.

    Only the first `limit` full-text matches (in index order) are ranked, plus the best trigram
    matches on name and email when full text found few; see the module docstring. Pass the
    `matches` already fetched by `search_matches` to avoid fetching them again.
    """
    if matches is None:
        matches = search_matches(queryset, q, limit=limit)
    return (
        # One array parameter, not 2,000 placeholders (each one is parsed and quoted).
        queryset.filter(id__in=RawSQL("SELECT unnest(%s::bigint[])", [matches.ids]))
        .annotate(rank=search_rank(q))
        .order_by("-rank", "-id")
    )


def search_is_bounded(queryset: QuerySet, q: str, *, limit: int | None = None) -> bool:
    """Whether the full-text matches of `q` reach the ranking bound (more exist than ranked)."""
    bound = _rank_limit(limit)
    matches = queryset.filter(search_vector=search_query(q)).order_by().values("id")
    with _full_text_plan():
        return matches[: bound + 1].count() > bound


# --- keyset pagination -------------------------------------------------------------------------


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool
    kind: str = "str"  # str | datetime | float | int
    nullable: bool = False  # nulls sort as the smallest value
    # The lookup that selects the rows without a value, where `<field>__isnull=True` plans
    # worse: for an annotation through a filtered join, `relation__isnull` is an anti-join.
    null_lookup: str = ""


@dataclass(frozen=True)
class Sort:
    label: str
    keys: tuple[SortKey, ...]


SORTS: dict[str, Sort] = {
    "relevance": Sort("Best match", (SortKey("rank", True, "float"), SortKey("id", True, "int"))),
    "-created": Sort(
        "Newest first", (SortKey("created_at", True, "datetime"), SortKey("id", True, "int"))
    ),
    "created": Sort(
        "Oldest first", (SortKey("created_at", False, "datetime"), SortKey("id", False, "int"))
    ),
    "name": Sort(
        "Name A–Z",
        (
            SortKey("last_name", False),
            SortKey("first_name", False),
            SortKey("id", False, "int"),
        ),
    ),
    "-name": Sort(
        "Name Z–A",
        (SortKey("last_name", True), SortKey("first_name", True), SortKey("id", True, "int")),
    ),
    "-contacted": Sort(
        "Recently contacted",
        (
            SortKey(
                "last_contacted_at",
                True,
                "datetime",
                nullable=True,
                null_lookup="contact__isnull",
            ),
            SortKey("id", True, "int"),
        ),
    ),
    "contacted": Sort(
        "Longest since contact",
        (
            SortKey(
                "last_contacted_at",
                False,
                "datetime",
                nullable=True,
                null_lookup="contact__isnull",
            ),
            SortKey("id", False, "int"),
        ),
    ),
}


# What a row of the candidate list shows (`{% candidate_row %}`) and what every sort above orders
# by (`last_contacted_at` comes from `with_last_contacted()`): the list reads only these columns
# of its 50 rows. A candidate has ~45 (a resume's text and search vector among them), and each
# selected column is work for the compiler and for each row.
LIST_COLUMNS = (
    "id",
    "organization_id",
    "first_name",
    "last_name",
    "headline",
    "current_title",
    "current_company",
    "city",
    "country",
    "skills",
    "status",
    "created_at",
    "owner",
    "owner__name",
    "owner__email",
)

SORT_CHOICES = [(name, sort.label) for name, sort in SORTS.items()]


def _order_expression(key: SortKey, reverse: bool):
    descending = key.descending != reverse
    expression = F(key.field)
    if not key.nullable:
        return expression.desc() if descending else expression.asc()
    # Nulls are the smallest value: last when descending, first when ascending.
    return expression.desc(nulls_last=True) if descending else expression.asc(nulls_first=True)


def _after(key: SortKey, value, reverse: bool) -> Q:
    """Rows whose `key` comes strictly after `value` in the (possibly reversed) order."""
    descending = key.descending != reverse
    if value is None:
        if descending:
            return Q(pk__in=[])  # nulls come last: nothing after them on this key
        return Q(**{f"{key.field}__isnull": False})
    condition = Q(**{f"{key.field}__{'lt' if descending else 'gt'}": value})
    if key.nullable and descending:
        condition |= Q(**{f"{key.field}__isnull": True})
    return condition


def _equal(key: SortKey, value) -> Q:
    if value is None:
        return Q(**{f"{key.field}__isnull": True})
    return Q(**{key.field: value})


def _keyset_condition(sort: Sort, values: tuple, reverse: bool) -> Q:
    condition = Q(pk__in=[])
    equal = Q()
    for key, value in zip(sort.keys, values, strict=True):
        condition |= equal & _after(key, value, reverse)
        equal &= _equal(key, value)
    first, value = sort.keys[0], values[0]
    if value is not None and not first.nullable:
        # Implied by the OR above, but only this form bounds an index scan: without it a
        # deep page walked the (organisation, created) index from the newest row (1.3 s on
        # page 50 of three facets at a million candidates).
        descending = first.descending != reverse
        condition &= Q(**{f"{first.field}__{'lte' if descending else 'gte'}": value})
    return condition


def cursor_encode(sort: Sort, row) -> str:
    parts = []
    for key in sort.keys:
        value = getattr(row, key.field)
        if value is None:
            parts.append("")
        elif key.kind == "datetime":
            parts.append(value.isoformat())
        elif key.kind == "float":
            parts.append(repr(float(value)))
        elif key.kind == "int":
            parts.append(str(value))
        else:
            parts.append(quote(value, safe=""))
    return ",".join(parts)


def cursor_decode(sort: Sort, cursor: str) -> tuple | None:
    """The sort values named by `cursor` (`<sort value>,…,<id>`), or None if it is not valid."""
    parts = (cursor or "").split(",")
    if len(parts) != len(sort.keys):
        return None
    values = []
    try:
        for key, part in zip(sort.keys, parts, strict=True):
            if part == "" and key.nullable:
                values.append(None)
            elif key.kind == "datetime":
                value = parse_datetime(part)
                if value is None:
                    return None
                if value.utcoffset() is not None:
                    # Our cursors are in UTC; PostgreSQL refuses offsets past ±15:59, and a
                    # moment past the ends of time in UTC (OverflowError) is no cursor of ours.
                    value = value.astimezone(UTC)
                values.append(value)
            elif key.kind == "float":
                values.append(float(part))
            elif key.kind == "int":
                values.append(int(part))
            else:
                values.append(unquote(part))
    except (ValueError, OverflowError):
        return None
    return tuple(values)


@dataclass
class Page:
    rows: list
    next_cursor: str | None
    previous_cursor: str | None


def keyset_page(
    queryset: QuerySet,
    *,
    sort: Sort,
    size: int,
    after: str | None = None,
    before: str | None = None,
) -> Page:
    """One page of `queryset` in `sort` order, after (or before) a cursor. No OFFSET: each page
    is an index range scan from the cursor, equally fast on page 1 and page 10,000."""
    reverse = False
    values = None
    if before:
        values = cursor_decode(sort, before)
        reverse = values is not None
    if values is None and after:
        values = cursor_decode(sort, after)
    if sort.keys[0].nullable:
        rows = _rows_by_segment(queryset, sort, values, reverse, limit=size + 1)
    else:
        if values is not None:
            queryset = queryset.filter(_keyset_condition(sort, values, reverse))
        queryset = queryset.order_by(*(_order_expression(key, reverse) for key in sort.keys))
        rows = list(queryset[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if reverse:
        rows.reverse()
        has_next, has_previous = True, more
    else:
        has_next, has_previous = more, values is not None
    return Page(
        rows=rows,
        next_cursor=cursor_encode(sort, rows[-1]) if rows and has_next else None,
        previous_cursor=cursor_encode(sort, rows[0]) if rows and has_previous else None,
    )


def _rows_by_segment(queryset, sort: Sort, values, reverse: bool, *, limit: int) -> list:
    """`limit` rows in `sort` order when its first key is nullable (`last_contacted_at`): the
    rows with a value and the rows without are read as two segments, one query each, in the
    order the sort puts them (nulls last when descending, first when ascending), from the
    cursor's segment on. One ORDER BY with NULLS LAST over a left join cannot be read off an
    index: it sorted every candidate of the organisation (1.6 to 1.9 s a page at a million);
    each segment can (the values: the joined table's index in order; the nulls: an anti-join
    in id order)."""
    first, rest = sort.keys[0], Sort(sort.label, sort.keys[1:])
    valued = Sort(sort.label, (replace(first, nullable=False), *rest.keys))
    descending = first.descending != reverse
    segments = [False, True] if descending else [True, False]  # "is null", in reading order
    start = segments.index(values[0] is None) if values is not None else 0
    rows: list = []
    for index, nulls in enumerate(segments[start:]):
        segment_sort = rest if nulls else valued
        lookup = (first.null_lookup if nulls else "") or f"{first.field}__isnull"
        queryset_segment = queryset.filter(**{lookup: nulls})
        if values is not None and index == 0:  # the cursor's own segment
            cursor = values[1:] if nulls else values
            queryset_segment = queryset_segment.filter(
                _keyset_condition(segment_sort, cursor, reverse)
            )
        ordered = queryset_segment.order_by(
            *(_order_expression(key, reverse) for key in segment_sort.keys)
        )
        rows += list(ordered[: limit - len(rows)])
        if len(rows) >= limit:
            break
    return rows


def ranked_page(
    queryset: QuerySet,
    matches: SearchMatches,
    *,
    size: int,
    after: str | None = None,
    before: str | None = None,
) -> Page:
    """`keyset_page` of `candidate_search(queryset, q, matches=matches)` in relevance order,
    ordered here from the ranks `search_matches` computed: only the page's rows are read
    again, by id from `queryset` (the filtered candidates the search ran on), and nothing is
    ranked twice. The same rows, ranks and cursors as the SQL keyset."""
    if matches.ids and not matches.ranks:
        raise ValueError("ranked_page needs the ranks of search_matches(…, ranked=True)")
    sort = SORTS["relevance"]
    reverse = False
    values = None
    if before:
        values = cursor_decode(sort, before)
        reverse = values is not None
    if values is None and after:
        values = cursor_decode(sort, after)
    # (rank, id), as the query orders them: rank descending, then id descending. A rank is
    # never NULL for a row that full text or trigrams found; 0 if it ever were.
    keys = [(matches.ranks.get(pk) or 0.0, pk) for pk in matches.ids]
    if reverse:
        chosen = sorted(key for key in keys if key > values)[: size + 1]
    else:
        chosen = sorted((key for key in keys if values is None or key < values), reverse=True)[
            : size + 1
        ]
    more = len(chosen) > size
    chosen = chosen[:size]
    if reverse:
        chosen.reverse()
        has_next, has_previous = True, more
    else:
        has_next, has_previous = more, values is not None
    found = queryset.in_bulk([pk for _rank, pk in chosen])
    rows = []
    for rank, pk in chosen:
        if pk in found:  # gone since (deleted or merged a moment ago): the page is shorter
            row = found[pk]
            row.rank = rank
            rows.append(row)
    return Page(
        rows=rows,
        next_cursor=cursor_encode(sort, rows[-1]) if rows and has_next else None,
        previous_cursor=cursor_encode(sort, rows[0]) if rows and has_previous else None,
    )


def count_capped(queryset: QuerySet, cap: int) -> int:
    """The number of rows, counted exactly up to `cap` (returns cap + 1 beyond it).

    Planned without sequential scans. For a count that stops at `cap`, PostgreSQL costs a
    sequential scan as if the organisation's matching rows were spread evenly over the table,
    but a tenant's rows lie together: on the bench's million-candidate organisation a three-facet
    count read 21,576 pages (45-55 ms) to find its 1,001 rows; through the organisation's
    country index it read 2,053 buffers (5-6 ms). Every filtered query has the organisation's
    indexes to use instead, and a bitmap scan still reads a large share in table order.
    """
    with planner_settings(enable_seqscan="off"):
        return queryset.order_by().values("id")[: cap + 1].count()


def count_display(total: int, cap: int) -> str:
    """A count from `count_capped` for people: "1,234", or "10,000+" beyond the cap."""
    return f"{cap:,}+" if total > cap else f"{total:,}"


# --- highlighting ------------------------------------------------------------------------------

_TERM = re.compile(r"[\w@.+'-]+", re.UNICODE)
_OPERATORS = {"or", "and", "not"}


def highlight_terms(q: str) -> list[str]:
    """The words of a web-search query worth marking in results (no excluded `-words`)."""
    terms = set()
    for word in _TERM.findall((q or "").lower()):
        if word.startswith("-") or word in _OPERATORS:
            continue
        word = word.strip(".'-+")
        if len(word) >= 2:
            terms.add(word[:-1] if len(word) > 4 and word.endswith("s") else word)
    return sorted(terms, key=len, reverse=True)


@functools.lru_cache(maxsize=64)
def _highlight_pattern(terms: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, terms)) + ")", re.IGNORECASE)


def highlight(text: str, terms: list[str]) -> SafeString:
    """`text` HTML-escaped, with words starting with one of `terms` wrapped in <mark>.

    A page of results highlights five fields of 50 rows with the same terms: the pattern is
    compiled once, and the pieces are escaped as plain strings and joined once (Django's
    `escape` and SafeString concatenation wrap every piece)."""
    text = str(text or "")
    if not terms or not text:
        return mark_safe(html_escape(text))  # noqa: S308 (escaped)
    parts = []
    position = 0
    for match in _highlight_pattern(tuple(terms)).finditer(text):
        parts.append(html_escape(text[position : match.start()]))
        parts.append(f"<mark>{html_escape(match.group(0))}</mark>")
        position = match.end()
    parts.append(html_escape(text[position:]))
    return mark_safe("".join(parts))  # noqa: S308 (every piece is escaped)


def skill_badges(skills: list[str], terms: list[str]) -> list[tuple[str, bool]]:
    """Skills as (skill, matches the search) pairs, the matching ones first (for display)."""
    badges = [
        (skill, any(word.startswith(term) for term in terms for word in skill.split()))
        for skill in skills or []
    ]
    return sorted(badges, key=lambda badge: not badge[1])


# --- resume snippets ---------------------------------------------------------------------------

# ts_headline marks matches with these (Unicode private-use characters, removed from the text
# first), so its output can be escaped as a whole and the marks put back as <mark> afterwards:
# nothing a resume contains can become HTML.
_START, _STOP = "\ue000", "\ue001"
# The resume text a snippet is taken from: a window around the first literal match of any of
# the query's words or stems, found with strpos within the first RESUME_SCAN characters (the
# length the search vector covers). ts_headline parses all the text it is given (~0.7 ms per
# 4,000 characters here), so it sees only the window: ~0.1 ms per row instead of tens.
RESUME_SCAN = 100_000
SNIPPET_WINDOW = 600
SNIPPET_BEFORE = 200

# `page` and `placed` are MATERIALIZED: inlined, PostgreSQL evaluated the start's subquery once
# per reference (three) and lowered the whole resume once per word; computed once per row, the
# query for a page of 50 resumes took 15 ms instead of 44 (docs/performance.md).
_SNIPPETS_SQL = """
WITH query AS (
    SELECT websearch_to_tsquery('simple', %(q)s) || websearch_to_tsquery('english', %(q)s) AS q,
           tsvector_to_array(to_tsvector('simple', %(q)s) || to_tsvector('english', %(q)s))
               AS words
), page AS MATERIALIZED (
    SELECT candidate.id, left(candidate.resume_text, %(scan)s) AS text,
           lower(left(candidate.resume_text, %(scan)s)) AS lowered
    FROM candidates_candidate AS candidate, query
    WHERE candidate.organization_id = %(organization_id)s
      AND candidate.id = ANY(%(ids)s)
      AND candidate.resume_text <> ''
      AND ts_filter(candidate.search_vector, '{d}') @@ query.q
), placed AS MATERIALIZED (
    SELECT page.id, page.text,
           greatest(1, coalesce((
               SELECT min(position) FROM (
                   SELECT strpos(page.lowered, word) AS position FROM unnest(query.words) AS word
               ) AS found WHERE position > 0
           ), 1) - %(before)s) AS start
    FROM page, query
)
SELECT placed.id, placed.start > 1,
       placed.start + %(window)s <= length(placed.text),
       ts_headline(
           'english',
           translate(substr(placed.text, placed.start, %(window)s), %(marks)s, ''),
           query.q,
           %(options)s
       )
FROM placed, query
"""


def resume_snippets(*, organization_id: int, candidate_ids: list[int], q: str) -> dict:
    """For the shown page of a search: {candidate id: a short HTML-escaped excerpt of their
    resume with the matched words in <mark>}, for those whose resume matches `q` (the
    resume's part of the stored search vector, weight D). One query, bounded text per row."""
    if not q.strip() or not candidate_ids:
        return {}
    options = (
        f"StartSel={_START}, StopSel={_STOP}, MaxWords=30, MinWords=12, ShortWord=2, "
        "HighlightAll=false"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            _SNIPPETS_SQL,
            {
                "q": q,
                "organization_id": organization_id,
                "ids": list(candidate_ids),
                "marks": _START + _STOP,
                "options": options,
                "scan": RESUME_SCAN,
                "window": SNIPPET_WINDOW,
                "before": SNIPPET_BEFORE,
            },
        )
        rows = cursor.fetchall()
    snippets = {}
    for candidate_id, cut_before, cut_after, headline in rows:
        if _START not in (headline or ""):
            continue  # the window held no match (only a stem elsewhere): no snippet
        snippets[candidate_id] = _snippet_html(
            headline, ellipsis_before=cut_before, ellipsis_after=cut_after
        )
    return snippets


def _snippet_html(headline: str, *, ellipsis_before: bool, ellipsis_after: bool) -> SafeString:
    text = " ".join(headline.split())
    html = str(escape(text)).replace(_START, "<mark>").replace(_STOP, "</mark>")
    if ellipsis_before:
        html = "… " + html
    if ellipsis_after:
        html += " …"
    return SafeString(html)
