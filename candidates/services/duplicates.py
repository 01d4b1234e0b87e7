"""Finding likely duplicate candidates and keeping the review queue (DuplicateSuggestion).

Three signals, each answered by an index rather than by comparing every pair in Python:

* the same email address — primary or alternate, either way round (email index and the GIN
  index on alternate_emails);
* the same phone number (cand_org_phone);
* a similar name (pg_trgm similarity of ``search_name`` at least
  ``DUPLICATE_NAME_SIMILARITY``, through the ``%`` operator) *and* the same current company,
  case-insensitively (cand_org_company); the organisation-wide scan compares names only within
  a company's people sharing a first or a last name (``_SCAN_MATCHES``).

Everything is one set-based ``INSERT … SELECT … ON CONFLICT`` per call: suggestions are pairs
(a < b) with the strongest reason; an existing open suggestion only gets a better score, and a
pair someone dismissed (or merged) is never reopened.

Public entry points:
    duplicates_check_candidate(candidate=…)                      after creating/editing one
    duplicates_check_candidates(organization=…, candidate_ids=…) after an import batch
    duplicates_scan(organization=…)                              the whole organisation (nightly)
"""

from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from candidates.models import Candidate, DuplicateSuggestion, Job
from crm.models import Organization, User

NAME_SIMILARITY = 0.6
# A phone or email shared by more people than this is a switchboard or a placeholder, not a
# duplicate; such groups are skipped by the organisation-wide scan.
MAX_GROUP_SIZE = 50
# The organisation-wide scan compares names within a company only among people sharing a first
# or a last name; a block larger than this (a very common name at a very large employer) is
# skipped, as its pairs grow with the square of its size.
MAX_NAME_BLOCK_SIZE = 200
SCORES = {"email": 1.0, "phone": 0.9, "name_company": 0.8}  # name: times the trigram similarity

_INSERT = """
INSERT INTO candidates_duplicatesuggestion
    (organization_id, candidate_a_id, candidate_b_id, reason, score, state, created_at)
SELECT DISTINCT ON (LEAST(one_id, two_id), GREATEST(one_id, two_id))
    %(organization_id)s, LEAST(one_id, two_id), GREATEST(one_id, two_id), reason,
    round(score::numeric, 3)::float, 'open', %(now)s
FROM matches
WHERE one_id <> two_id
ORDER BY LEAST(one_id, two_id), GREATEST(one_id, two_id), score DESC
ON CONFLICT ON CONSTRAINT duplicate_pair_unique DO UPDATE
    SET reason = EXCLUDED.reason, score = EXCLUDED.score
    WHERE candidates_duplicatesuggestion.state = 'open' AND candidates_duplicatesuggestion.score < EXCLUDED.score
"""

# Matches of a given set of candidates against every live candidate of the organisation.
_CHECK_MATCHES = """
WITH source AS (
    SELECT id, email, alternate_emails, phone, search_name,
           lower(current_company) AS company
    FROM candidates_candidate
    WHERE organization_id = %(organization_id)s AND id = ANY(%(candidate_ids)s)
      AND merged_into_id IS NULL
), live AS NOT MATERIALIZED (
    SELECT id, email, alternate_emails, phone, search_name, current_company
    FROM candidates_candidate
    WHERE organization_id = %(organization_id)s AND merged_into_id IS NULL
), matches AS (
    SELECT s.id AS one_id, o.id AS two_id, 'email' AS reason, %(email)s::float AS score
    FROM source s JOIN live o ON o.email = s.email
    WHERE s.email <> '' AND o.email <> ''
    UNION ALL
    SELECT s.id, o.id, 'email', %(email)s
    FROM source s JOIN live o ON o.alternate_emails @> ARRAY[s.email]::varchar[]
    WHERE s.email <> ''
    UNION ALL
    SELECT s.id, o.id, 'email', %(email)s
    FROM source s JOIN live o ON o.email = ANY(s.alternate_emails)
    WHERE o.email <> ''
    UNION ALL
    SELECT s.id, o.id, 'email', %(email)s
    FROM source s JOIN live o ON o.alternate_emails && s.alternate_emails
    WHERE s.alternate_emails <> '{}'
    UNION ALL
    SELECT s.id, o.id, 'phone', %(phone)s
    FROM source s JOIN live o ON o.phone = s.phone
    WHERE s.phone <> ''
    UNION ALL
    SELECT s.id, o.id, 'name_company',
           %(name_company)s * similarity(o.search_name, s.search_name)
    FROM source s JOIN live o
        ON lower(o.current_company) = s.company AND o.search_name %% s.search_name
    WHERE s.company <> '' AND s.search_name <> ''
)
"""

# Every match within the organisation, set-based: groups by email and by phone, and names
# compared by trigram similarity only within blocks of one company sharing a first or a last
# name (case-insensitively) — never all pairs, not even all pairs of one company: a company
# with 12,000 candidates is 72 million pairs, and the self-join on company that this replaced
# did not finish in five minutes at a million candidates (the blocks: 34 s, docs/performance.md).
# Two names that differ in both first and last name are left to the check run when a
# candidate is created or edited, which compares with the whole company.
_SCAN_MATCHES = """
WITH live AS NOT MATERIALIZED (
    SELECT id, email, alternate_emails, phone, search_name, current_company, first_name,
           last_name
    FROM candidates_candidate
    WHERE organization_id = %(organization_id)s AND merged_into_id IS NULL
), addresses AS (
    SELECT id, lower(email) AS address FROM live WHERE email <> ''
    UNION
    SELECT live.id, lower(alternate.address)
    FROM live, unnest(live.alternate_emails) AS alternate(address)
    WHERE live.alternate_emails <> '{}'
), email_groups AS (
    SELECT array_agg(id) AS ids FROM addresses
    GROUP BY address HAVING count(*) BETWEEN 2 AND %(max_group)s
), phone_groups AS (
    SELECT array_agg(id) AS ids FROM live WHERE phone <> ''
    GROUP BY phone HAVING count(*) BETWEEN 2 AND %(max_group)s
), name_blocks AS (
    SELECT array_agg(id) AS ids, array_agg(search_name) AS names
    FROM live WHERE current_company <> '' AND search_name <> '' AND last_name <> ''
    GROUP BY lower(current_company), lower(last_name)
    HAVING count(*) BETWEEN 2 AND %(max_block)s
    UNION ALL
    SELECT array_agg(id), array_agg(search_name)
    FROM live WHERE current_company <> '' AND search_name <> '' AND first_name <> ''
    GROUP BY lower(current_company), lower(first_name)
    HAVING count(*) BETWEEN 2 AND %(max_block)s
), matches AS (
    SELECT one.id AS one_id, two.id AS two_id, 'email' AS reason, %(email)s::float AS score
    FROM email_groups, unnest(ids) AS one(id), unnest(ids) AS two(id)
    WHERE one.id < two.id
    UNION ALL
    SELECT one.id, two.id, 'phone', %(phone)s
    FROM phone_groups, unnest(ids) AS one(id), unnest(ids) AS two(id)
    WHERE one.id < two.id
    UNION ALL
    SELECT one.id, two.id, 'name_company', %(name_company)s * similarity(one.name, two.name)
    FROM name_blocks,
         unnest(ids, names) AS one(id, name),
         unnest(ids, names) AS two(id, name)
    WHERE one.id < two.id AND one.name %% two.name
)
"""


def _params(organization_id: int, **extra) -> dict:
    return {
        "organization_id": organization_id,
        "now": timezone.now(),
        "max_group": int(getattr(settings, "DUPLICATE_MAX_GROUP_SIZE", MAX_GROUP_SIZE)),
        "max_block": int(getattr(settings, "DUPLICATE_MAX_NAME_BLOCK_SIZE", MAX_NAME_BLOCK_SIZE)),
        **SCORES,
        **extra,
    }


def _run(sql: str, params: dict) -> int:
    threshold = float(getattr(settings, "DUPLICATE_NAME_SIMILARITY", NAME_SIMILARITY))
    with transaction.atomic(), connection.cursor() as cursor:
        # SET LOCAL: the threshold of the `%` operator, for this transaction only.
        cursor.execute(
            "SELECT set_config('pg_trgm.similarity_threshold', %s, true)", [str(threshold)]
        )
        cursor.execute(sql + _INSERT, params)
        return cursor.rowcount


def duplicates_check_candidates(*, organization: Organization, candidate_ids: Iterable[int]) -> int:
    """Suggest duplicates for some candidates (e.g. an import batch) against the whole
    organisation, in one statement. Returns the number of suggestions created or updated."""
    ids = sorted({int(pk) for pk in candidate_ids})
    if not ids:
        return 0
    return _run(_CHECK_MATCHES, _params(organization.pk, candidate_ids=ids))


def duplicates_check_candidate(*, candidate: Candidate) -> int:
    """Suggest duplicates of one candidate (after it was created or edited)."""
    return _run(_CHECK_MATCHES, _params(candidate.organization_id, candidate_ids=[candidate.pk]))


def duplicates_scan(*, organization: Organization) -> int:
    """Suggest every likely duplicate pair of the organisation (set-based SQL)."""
    return _run(_SCAN_MATCHES, _params(organization.pk))


def duplicates_scan_start(*, organization: Organization, actor: User | None) -> Job:
    """Queue an organisation-wide scan whose progress shows on the job page."""
    job = Job.objects.create(
        organization=organization,
        kind=Job.Kind.DUPLICATE_SCAN,
        status=Job.Status.QUEUED,
        created_by=actor,
        total=1,
    )

    def queue() -> None:
        from candidates.tasks import duplicates_scan as scan_task

        scan_task.delay(organization_id=organization.pk, job_id=job.pk)

    transaction.on_commit(queue)
    return job


def duplicates_scan_job_run(*, job: Job) -> int:
    job.status = Job.Status.RUNNING
    job.started_at = timezone.now()
    job.save(update_fields=["status", "started_at"])
    try:
        written = duplicates_scan(organization=job.organization)
    except Exception as error:
        job.status = Job.Status.FAILED
        job.error = f"The scan stopped: {error}"[:1000]
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        raise
    open_count = DuplicateSuggestion.objects.filter(
        organization_id=job.organization_id, state=DuplicateSuggestion.State.OPEN
    ).count()
    job.status = Job.Status.DONE
    job.processed = 1
    job.finished_at = timezone.now()
    job.result = {"new or updated suggestions": written, "open suggestions": open_count}
    job.save(update_fields=["status", "processed", "finished_at", "result"])
    return written


def duplicate_shared_emails(*, one: Candidate, other: Candidate) -> set[str]:
    """The addresses (main or alternate, compared without case) that both profiles have: what
    a "Same email" suggestion matched on, to be shown even when it is an alternate address."""

    def addresses(candidate: Candidate) -> set[str]:
        return {a.lower() for a in [candidate.email, *candidate.alternate_emails] if a}

    return addresses(one) & addresses(other)


def duplicate_dismiss(*, suggestion: DuplicateSuggestion) -> DuplicateSuggestion:
    """ "Not a duplicate": the pair is never suggested again."""
    suggestion.state = DuplicateSuggestion.State.DISMISSED
    suggestion.save(update_fields=["state"])
    return suggestion
