"""Seed the benchmark database with PostgreSQL COPY.

One benchmark organisation of 1,000,000 candidates, three smaller organisations of 50,000 (so
tenant filtering is real), an empty organisation for the import workload, a "created" timeline
entry for every candidate, and a sample of profiles with a 200-item timeline and a few notes.

The candidates of the big organisation are COPYed with the search trigger on and the table's
secondary indexes dropped, then the indexes are rebuilt (the standard bulk-load recipe); the
smaller organisations are COPYed afterwards with every index live, which is what an import into
a populated table costs. Both rates are printed.

Seeding writes timeline rows with COPY directly (not activity_record): this is fixture data for
a measurement, and the fastest way to lay it down.
"""

from __future__ import annotations

import json
import random
import sys
import time
import unicodedata
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate

import psycopg

from bench import vocab
from bench.db import write_meta

SEED_VERSION = 2  # 2: "last contacted" in candidates_candidatecontact
BENCH_SLUG = "bench"
SMALL_SLUG = "bench-small-{}"
IMPORT_SLUG = "bench-import"
LOGIN_EMAIL = "recruiter@bench.rapport.test"
BENCH_PASSWORD = "rapport-bench"  # noqa: S105 - a throwaway login on a local benchmark database
RECRUITERS_PER_ORG = 20
PROFILE_SAMPLE = 20  # candidates with a full timeline
TIMELINE_ITEMS = 200
NOTES_PER_PROFILE = 5
BATCH = 50_000  # rows per COPY statement / transaction
NOW = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)  # fixed, so every seed is the same data
FIVE_YEARS = 5 * 365 * 86400

CANDIDATE_COLUMNS = (
    "organization_id",
    "first_name",
    "last_name",
    "email",
    "alternate_emails",
    "phone",
    "city",
    "country",
    "headline",
    "current_title",
    "current_company",
    "linkedin_url",
    "github_url",
    "portfolio_url",
    "skills",
    "tags",
    "seniority",
    "source",
    "source_detail",
    "owner_id",
    "status",
    "not_now_until",
    "custom_fields",
    "created_at",
    "updated_at",
    "engagement_score",
    "has_resume",
    "resume_text",
)


@dataclass
class Spec:
    main: int = 1_000_000
    small: int = 50_000
    small_orgs: int = 3
    version: int = SEED_VERSION


def _ascii(text: str) -> str:
    return (
        unicodedata.normalize("NFKD", text)
        .encode("ascii", "ignore")
        .decode()
        .lower()
        .replace(" ", "")
        .replace("'", "")
    )


def _weighted(pairs):
    values = [value for value, _ in pairs]
    return values, list(accumulate(weight for _, weight in pairs))


class CandidateGenerator:
    """Deterministic, fast generation of realistic candidate rows (tuples in COLUMN order)."""

    def __init__(self, seed: int = 42):
        self.rng = random.Random(seed)
        cultures = list(vocab.CULTURE_WEIGHTS)
        self.cultures, self.culture_cum = (
            cultures,
            list(accumulate(vocab.CULTURE_WEIGHTS[c] for c in cultures)),
        )
        self.names = {
            culture: (first, last, [_ascii(n) for n in first], [_ascii(n) for n in last])
            for culture, (first, last) in vocab.NAMES.items()
        }
        self.places, self.place_cum = _weighted([((c, k), w) for c, k, w in vocab.PLACES])
        self.titles, self.title_cum = _weighted(vocab.TITLES)
        self.skills, self.skill_cum = _weighted(vocab.SKILLS)
        self.tags, self.tag_cum = _weighted(vocab.TAGS)
        self.sources, self.source_cum = _weighted(vocab.SOURCES)
        self.statuses, self.status_cum = _weighted(vocab.STATUSES)
        self.paragraphs = [self._paragraph() for _ in range(3000)]

    # --- resume prose ---------------------------------------------------------------------
    def _sentence(self) -> str:
        rng = self.rng
        template = rng.choice(vocab.RESUME_SENTENCES)
        fill = {key: rng.choice(values) for key, values in vocab.RESUME_SLOTS.items()}
        skill, skill2 = rng.sample(self.skills[:40], 2)
        return template.format(
            n=rng.randint(2, 12),
            pct=rng.randint(10, 70),
            big=f"{rng.randint(1, 900)},000",
            skill=skill,
            skill2=skill2,
            **fill,
        )

    def _paragraph(self) -> str:
        return " ".join(self._sentence() for _ in range(self.rng.randint(3, 5)))

    def resume(self, first, last, title, company, city, skills) -> str:
        rng = self.rng
        years = rng.randint(2, 20)
        parts = [
            f"{first} {last}\n{title} — {city}\n\nSummary\n{title} with {years} years of "
            f"experience building software products. Currently at {company}, focused on "
            f"{', '.join(skills[:3])}. Enjoys mentoring, clear writing and shipping small, "
            f"reversible changes.\n",
        ]
        for _ in range(rng.randint(3, 4)):
            employer = rng.choice(vocab.COMPANIES)
            start = rng.randint(2005, 2022)
            parts.append(
                f"{rng.choice(vocab.RESUME_HEADINGS)} — {employer} ({start}–{start + rng.randint(1, 4)})\n"
                f"{rng.choice(self.paragraphs)} {rng.choice(self.paragraphs)}\n"
            )
        parts.append(f"Education\n{rng.choice(vocab.EDUCATION)}\n")
        parts.append(f"Skills\n{', '.join(skills)}\n")
        return "\n".join(parts)

    # --- rows -----------------------------------------------------------------------------
    def person(self):
        rng = self.rng
        culture = rng.choices(self.cultures, cum_weights=self.culture_cum)[0]
        first, last, first_ascii, last_ascii = self.names[culture]
        i, j = rng.randrange(len(first)), rng.randrange(len(last))
        return first[i], last[j], first_ascii[i], last_ascii[j]

    def pick_skills(self) -> list[str]:
        picked = self.rng.choices(self.skills, cum_weights=self.skill_cum, k=self.rng.randint(3, 8))
        return list(dict.fromkeys(picked))

    def rows(self, *, organization_id: int, owner_ids: list[int], start: int, count: int):
        rng = self.rng
        k = count
        places = rng.choices(self.places, cum_weights=self.place_cum, k=k)
        titles = rng.choices(self.titles, cum_weights=self.title_cum, k=k)
        sources = rng.choices(self.sources, cum_weights=self.source_cum, k=k)
        statuses = rng.choices(self.statuses, cum_weights=self.status_cum, k=k)
        companies = rng.choices(vocab.COMPANIES, k=k)
        domains = rng.choices(vocab.EMAIL_DOMAINS, k=k)
        owners = rng.choices(owner_ids, k=k)
        now_ts = NOW.timestamp()
        for index in range(k):
            n = start + index
            first, last, first_a, last_a = self.person()
            city, country = places[index]
            title = titles[index]
            company = companies[index]
            skills = self.pick_skills()
            seniority = vocab.SENIORITY_FOR_TITLE.get(title) or rng.choice(vocab.SENIORITIES)
            r = rng.random()
            if r < 0.45:
                headline = f"{title} at {company}"
            elif r < 0.8:
                headline = f"{title} · {skills[0]}, {skills[1 % len(skills)]}"
            else:
                headline = f"{seniority.capitalize() or 'Experienced'} {title.lower()} open to new roles in {city}"
            tags = (
                list(dict.fromkeys(rng.choices(self.tags, cum_weights=self.tag_cum, k=2)))
                if rng.random() < 0.35
                else []
            )
            status = statuses[index]
            created_ts = now_ts - rng.random() * FIVE_YEARS
            created = datetime.fromtimestamp(created_ts, tz=UTC)
            updated = datetime.fromtimestamp(
                created_ts + rng.random() * (now_ts - created_ts), tz=UTC
            )
            # "Last contacted" is written in SQL after the COPY (`seed_contacts`); these two
            # draws stay so that every other column is what earlier seeds generated.
            rng.random(), rng.random()
            has_resume = rng.random() < 0.10
            resume = self.resume(first, last, title, company, city, skills) if has_resume else ""
            source = sources[index]
            yield (
                organization_id,
                first,
                last,
                f"{first_a}.{last_a}.{n}@{domains[index]}",
                [f"{first_a}{n}@{company_domain(company)}"] if rng.random() < 0.05 else [],
                f"+44{rng.choice(UK_MOBILE)}{rng.randrange(10**6):06d}"
                if rng.random() < 0.7
                else "",
                city,
                country,
                headline,
                title,
                company,
                f"https://www.linkedin.com/in/{first_a}-{last_a}-{n}" if rng.random() < 0.7 else "",
                f"https://github.com/{first_a}{last_a}{n}" if rng.random() < 0.2 else "",
                "",
                skills,
                tags,
                seniority,
                source,
                SOURCE_DETAIL.get(source, ""),
                owners[index] if rng.random() < 0.9 else None,
                status,
                (NOW + timedelta(days=rng.randint(30, 365))).date()
                if status == "not_now"
                else None,
                json.dumps({"notice_period": f"{rng.choice((1, 2, 4, 12))} weeks"})
                if rng.random() < 0.2
                else "{}",
                created,
                updated,
                rng.randint(0, 100) if rng.random() < 0.7 else None,
                has_resume,
                resume,
            )


UK_MOBILE = ("7400", "7450", "7520", "7787", "7956")
SOURCE_DETAIL = {
    "event": "London Tech Week",
    "referral": "Employee referral",
    "import": "Legacy ATS export",
    "career_site": "careers page",
}


def company_domain(company: str) -> str:
    return _ascii(company).replace(".", "").replace("&", "") + ".example"


# --- organisations and users (Django ORM) ----------------------------------------------------
def create_organisations(spec: Spec) -> dict:
    from allauth.account.models import EmailAddress
    from django.contrib.auth.hashers import make_password
    from django_scopes import scopes_disabled

    from crm.models import Membership, Organization, Role, User

    password_hash = make_password(BENCH_PASSWORD)  # hashed once, shared by every bench login
    plan = [(BENCH_SLUG, "Bench Talent (1M)", spec.main)]
    plan += [
        (SMALL_SLUG.format(i), f"Bench Small {i}", spec.small)
        for i in range(1, spec.small_orgs + 1)
    ]
    plan.append((IMPORT_SLUG, "Bench Import", 0))
    orgs = {}
    with scopes_disabled():
        for slug, name, size in plan:
            org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
            owners = []
            for i in range(RECRUITERS_PER_ORG):
                email = (
                    LOGIN_EMAIL if (slug == BENCH_SLUG and i == 0) else f"r{i}@{slug}.bench.test"
                )
                user, _ = User.objects.get_or_create(
                    email=email,
                    defaults={"name": f"Recruiter {i} ({slug})", "password": password_hash},
                )
                EmailAddress.objects.get_or_create(
                    user=user, email=email, defaults={"verified": True, "primary": True}
                )
                Membership.objects.get_or_create(
                    organization=org, user=user, defaults={"role": Role.RECRUITER}
                )
                owners.append(user.pk)
            orgs[slug] = {"id": org.pk, "size": size, "owners": owners}
        # The login user is also a member of a small organisation: tenant filtering must hold.
        login = User.objects.get(email=LOGIN_EMAIL)
        Membership.objects.get_or_create(
            organization_id=orgs[SMALL_SLUG.format(1)]["id"],
            user=login,
            defaults={"role": Role.RECRUITER},
        )
    return orgs


SEED_CONTACTS = """
    INSERT INTO candidates_candidatecontact (candidate_id, organization_id, last_contacted_at)
    SELECT id, organization_id,
           created_at + (now() - created_at) * (((hashint8(id) >> 10) & 1023) / 1024.0)
    FROM candidates_candidate
    WHERE (hashint8(id) & 1023) < 614
"""


# --- COPY helpers -----------------------------------------------------------------------------
def secondary_indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    return conn.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.tablename = %s AND i.schemaname = 'public'
          AND i.indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)
        ORDER BY i.indexname
        """,
        [table, table],
    ).fetchall()


def copy_candidates(conn, generator, *, organization_id, owner_ids, count, start) -> float:
    """COPY `count` generated candidates; returns the seconds spent."""
    columns = ", ".join(CANDIDATE_COLUMNS)
    began = time.perf_counter()
    done = 0
    while done < count:
        size = min(BATCH, count - done)
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(f"COPY candidates_candidate ({columns}) FROM STDIN") as copy,
        ):
            for row in generator.rows(
                organization_id=organization_id,
                owner_ids=owner_ids,
                start=start + done,
                count=size,
            ):
                copy.write_row(row)
        done += size
        if sys.stdout.isatty():
            print(f"\r    {done:,}/{count:,} rows", end="", flush=True)
    if sys.stdout.isatty():
        print("\r" + " " * 40 + "\r", end="")
    return time.perf_counter() - began


TIMELINE_KINDS = [
    ("email_sent", "Sent “{campaign}”", 30),
    ("email_opened", "Opened “{campaign}”", 22),
    ("email_clicked", "Clicked a link in “{campaign}”", 8),
    ("email_replied", "Replied to “{campaign}”", 3),
    ("stage_changed", "Moved to {stage} in {pool}", 10),
    ("pool_added", "Added to {pool}", 6),
    ("status_changed", "Status changed to Not now", 3),
    ("tagged", "Tags changed: +{tag}", 6),
    ("owner_changed", "Owner changed", 2),
    ("edited", "Profile edited: current title", 6),
    ("follow_up", "Follow-up: check in about {pool}", 4),
]
CAMPAIGNS = [
    "Q3 backend roles",
    "London meetup invite",
    "Platform team update",
    "New year check-in",
]
STAGES = ["Contacted", "Screening", "Interview", "Offer"]
POOLS = ["Senior Python", "Data platform", "Silver medallists", "Frontend guild"]


def seed_timelines(conn, *, org: dict, candidate_ids: list[int], rng: random.Random) -> int:
    kinds, cum = _weighted([((k, s), w) for k, s, w in TIMELINE_KINDS])
    rows = 0
    with conn.transaction(), conn.cursor() as cur:
        for candidate_id in candidate_ids:
            note_ids = []
            for i in range(NOTES_PER_PROFILE):
                when = NOW - timedelta(days=rng.randint(1, 900))
                note_ids.append(
                    (
                        cur.execute(
                            "INSERT INTO candidates_note (organization_id, candidate_id, author_id,"
                            " body, pinned, created_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s)"
                            " RETURNING id",
                            [
                                org["id"],
                                candidate_id,
                                rng.choice(org["owners"]),
                                f"Call notes {i + 1}: strong on system design, wants hybrid work, "
                                "notice period one month. Follow up after the Q3 hiring plan.",
                                i == 0,
                                when,
                                when,
                            ],
                        ).fetchone()[0],
                        when,
                    )
                )
            with cur.copy(
                "COPY candidates_activity (organization_id, candidate_id, kind, actor_id,"
                " occurred_at, summary, data, note_id) FROM STDIN"
            ) as copy:
                for note_id, when in note_ids:
                    copy.write_row(
                        (
                            org["id"],
                            candidate_id,
                            "note_added",
                            org["owners"][0],
                            when,
                            "Note added",
                            "{}",
                            note_id,
                        )
                    )
                # The "created" entry is already there: 1 + notes + these = TIMELINE_ITEMS.
                for _ in range(TIMELINE_ITEMS - 1 - len(note_ids)):
                    kind, summary = rng.choices(kinds, cum_weights=cum)[0]
                    text = summary.format(
                        campaign=rng.choice(CAMPAIGNS),
                        stage=rng.choice(STAGES),
                        pool=rng.choice(POOLS),
                        tag=rng.choice(vocab.TAGS)[0],
                    )
                    copy.write_row(
                        (
                            org["id"],
                            candidate_id,
                            kind,
                            rng.choice(org["owners"]) if rng.random() < 0.5 else None,
                            NOW - timedelta(minutes=rng.randint(1, 900 * 24 * 60)),
                            text,
                            json.dumps({"source": "bench"}),
                            None,
                        )
                    )
                    rows += 1
            rows += len(note_ids)
    return rows


def seed(url: str, spec: Spec) -> dict:
    """Create and fill everything; returns the timings written to bench_meta."""
    began = time.perf_counter()
    print("  creating organisations and users…", flush=True)
    orgs = create_organisations(spec)
    generator = CandidateGenerator()
    timings: dict = {"spec": asdict(spec), "orgs": orgs}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET synchronous_commit = off")
        # 1. The big organisation: trigger on, secondary indexes dropped, then rebuilt.
        indexes = secondary_indexes(conn, "candidates_candidate")
        with conn.transaction():
            for name, _ in indexes:
                conn.execute(f'DROP INDEX "{name}"')
        main = orgs[BENCH_SLUG]
        print(f"  COPY {spec.main:,} candidates (search trigger on, indexes dropped)…", flush=True)
        seconds = copy_candidates(
            conn,
            generator,
            organization_id=main["id"],
            owner_ids=main["owners"],
            count=spec.main,
            start=0,
        )
        timings["copy_main"] = {"rows": spec.main, "seconds": seconds}
        timings["indexes"] = len(indexes) + 1  # + the primary key
        print(f"    {spec.main / seconds:,.0f} rows/s ({seconds:.1f} s)")
        print(f"  rebuilding {len(indexes)} indexes…", flush=True)
        t0 = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in indexes:
            conn.execute(definition)
        timings["index_build_seconds"] = time.perf_counter() - t0
        print(f"    {timings['index_build_seconds']:.1f} s")

        # 2. Smaller organisations, every index live.
        small_total, t0 = 0, time.perf_counter()
        for i in range(1, spec.small_orgs + 1):
            org = orgs[SMALL_SLUG.format(i)]
            print(
                f"  COPY {spec.small:,} candidates into {SMALL_SLUG.format(i)} (indexes live)…",
                flush=True,
            )
            copy_candidates(
                conn,
                generator,
                organization_id=org["id"],
                owner_ids=org["owners"],
                count=spec.small,
                start=spec.main + small_total,
            )
            small_total += spec.small
        seconds = time.perf_counter() - t0
        timings["copy_small"] = {"rows": small_total, "seconds": seconds}
        if small_total:
            print(f"    {small_total / seconds:,.0f} rows/s ({seconds:.1f} s)")

        # 3. "Last contacted" for ~60 % of every organisation's candidates, some time between
        # their creation and now (derived from the id's hash: the same on every seed).
        print("  last contacted…", flush=True)
        t0 = time.perf_counter()
        conn.execute(SEED_CONTACTS)
        timings["contacts_seconds"] = time.perf_counter() - t0
        print(f"    {timings['contacts_seconds']:.1f} s")

        # 4. A "created" timeline entry for every candidate (server-side INSERT … SELECT).
        print("  timeline: a 'created' entry per candidate…", flush=True)
        t0 = time.perf_counter()
        act_indexes = secondary_indexes(conn, "candidates_activity")
        with conn.transaction():
            for name, _ in act_indexes:
                conn.execute(f'DROP INDEX "{name}"')
            conn.execute(
                "INSERT INTO candidates_activity (organization_id, candidate_id, kind, actor_id,"
                " occurred_at, summary, data) SELECT organization_id, id, 'created', NULL,"
                " created_at, 'Profile created', '{}'::jsonb FROM candidates_candidate"
            )
        for _, definition in act_indexes:
            conn.execute(definition)
        timings["activity_created_seconds"] = time.perf_counter() - t0
        print(f"    {timings['activity_created_seconds']:.1f} s")

        # 5. Profiles with a full timeline: spread over the big organisation.
        step = max(1, spec.main // PROFILE_SAMPLE)
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n"
                " FROM candidates_candidate WHERE organization_id = %s) t"
                " WHERE n %% %s = 1 LIMIT %s",
                [main["id"], step, PROFILE_SAMPLE],
            ).fetchall()
        ]
        rows = seed_timelines(conn, org=main, candidate_ids=ids, rng=random.Random(7))
        timings["profile_ids"] = ids
        timings["timeline_rows"] = rows

        print("  VACUUM ANALYZE…", flush=True)
        t0 = time.perf_counter()
        for table in ("candidates_candidate", "candidates_activity", "candidates_note"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        timings["analyze_seconds"] = time.perf_counter() - t0
        timings["total_seconds"] = time.perf_counter() - began
        timings["seeded_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        write_meta(conn, timings)
    return timings


def print_seed_summary(meta: dict) -> None:
    main, small = meta["copy_main"], meta["copy_small"]
    print(
        f"  seeding: {meta['total_seconds']:.0f} s total (seeded {meta['seeded_at']})\n"
        f"    COPY with search trigger, indexes dropped: {main['rows']:,} rows in "
        f"{main['seconds']:.1f} s = {main['rows'] / main['seconds']:,.0f} rows/s; "
        f"index rebuild {meta['index_build_seconds']:.1f} s\n"
        + (
            f"    COPY with search trigger, all {meta['indexes']} indexes live: {small['rows']:,} rows in "
            f"{small['seconds']:.1f} s = {small['rows'] / small['seconds']:,.0f} rows/s\n"
            if small["rows"]
            else ""
        )
        + f"    'created' timeline rows (INSERT … SELECT): {meta['activity_created_seconds']:.1f} s;"
        f" {meta['timeline_rows']:,} timeline rows for {len(meta['profile_ids'])} profiles;"
        f" VACUUM ANALYZE {meta['analyze_seconds']:.1f} s"
    )
