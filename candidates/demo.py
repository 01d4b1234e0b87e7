"""Demo candidates for the demo organisation (registered in crm seed_demo's DEMO_SEEDERS).

About 300 varied, realistic profiles with notes and a plausible past timeline. A fixed random
seed keeps the demo the same on every machine. Email addresses use reserved example domains.
"""

import random
import unicodedata
from datetime import timedelta

import phonenumbers
from django.db import transaction
from django.utils import timezone

from candidates.models import Activity, Candidate, CandidateContact, CustomField, Note
from candidates.normalize import normalize_tags
from candidates.services.activities import activity_record
from candidates.services.custom_fields import custom_field_create
from crm.models import Role

SEED = 20240917
CANDIDATE_COUNT = 300

# (first names, last names, [(city, country, phone region)]) per naming culture.
CULTURES = [
    (
        ["Oliver", "Amelia", "Harry", "Isla", "George", "Freya", "Jack", "Poppy", "Noah", "Evie"],
        ["Walker", "Hughes", "Bennett", "Clarke", "Turner", "Fletcher", "Ward", "Shaw"],
        [
            ("London", "United Kingdom", "GB"),
            ("Manchester", "United Kingdom", "GB"),
            ("Edinburgh", "United Kingdom", "GB"),
            ("Bristol", "United Kingdom", "GB"),
        ],
    ),
    (
        ["Priya", "Arjun", "Ananya", "Rohan", "Kavya", "Vikram", "Meera", "Aditya", "Sneha"],
        ["Sharma", "Iyer", "Reddy", "Nair", "Kapoor", "Banerjee", "Menon", "Desai"],
        [("Bengaluru", "India", "IN"), ("Pune", "India", "IN"), ("London", "United Kingdom", "GB")],
    ),
    (
        ["Chinonso", "Adaeze", "Tunde", "Ngozi", "Emeka", "Funmilayo", "Kelechi", "Yetunde"],
        ["Okafor", "Adeyemi", "Nwosu", "Balogun", "Eze", "Okonkwo", "Adebayo"],
        [
            ("Lagos", "Nigeria", "NG"),
            ("London", "United Kingdom", "GB"),
            ("Dublin", "Ireland", "IE"),
        ],
    ),
    (
        ["Lucía", "Mateo", "Valentina", "Santiago", "Camila", "Diego", "Sofía", "Javier"],
        ["García", "Fernández", "López", "Martínez", "Ruiz", "Morales", "Castillo"],
        [("Madrid", "Spain", "ES"), ("Barcelona", "Spain", "ES"), ("Mexico City", "Mexico", "MX")],
    ),
    (
        ["Wei", "Mei", "Jun", "Xin", "Hao", "Lan", "Yu", "Ming"],
        ["Chen", "Wang", "Li", "Zhang", "Liu", "Huang", "Zhao"],
        [
            ("Singapore", "Singapore", "SG"),
            ("London", "United Kingdom", "GB"),
            ("Amsterdam", "Netherlands", "NL"),
        ],
    ),
    (
        ["Katarzyna", "Piotr", "Agnieszka", "Tomasz", "Magdalena", "Paweł", "Zofia"],
        ["Nowak", "Kowalski", "Wiśniewska", "Wójcik", "Kamiński", "Zielińska"],
        [("Warsaw", "Poland", "PL"), ("Kraków", "Poland", "PL"), ("Berlin", "Germany", "DE")],
    ),
    (
        ["Lukas", "Hannah", "Felix", "Lea", "Jonas", "Marie", "Niklas", "Sophie"],
        ["Müller", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Wagner"],
        [("Berlin", "Germany", "DE"), ("Munich", "Germany", "DE"), ("Hamburg", "Germany", "DE")],
    ),
    (
        ["Camille", "Louis", "Chloé", "Hugo", "Manon", "Théo", "Léa", "Julien"],
        ["Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Girard", "Fontaine"],
        [("Paris", "France", "FR"), ("Lyon", "France", "FR"), ("Nantes", "France", "FR")],
    ),
    (
        ["Yuki", "Haruto", "Sakura", "Ren", "Aoi", "Sota", "Hina"],
        ["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Yamamoto"],
        [("Tokyo", "Japan", "JP"), ("Osaka", "Japan", "JP"), ("London", "United Kingdom", "GB")],
    ),
    (
        ["Omar", "Layla", "Youssef", "Noor", "Karim", "Amira", "Samir", "Yasmin"],
        ["Haddad", "Khalil", "Mansour", "Nasser", "Saleh", "Farouk"],
        [
            ("Dubai", "United Arab Emirates", "AE"),
            ("Amman", "Jordan", "JO"),
            ("Paris", "France", "FR"),
        ],
    ),
    (
        ["Ana", "João", "Beatriz", "Gabriel", "Mariana", "Rafael", "Larissa"],
        ["Silva", "Santos", "Oliveira", "Souza", "Pereira", "Costa", "Almeida"],
        [("São Paulo", "Brazil", "BR"), ("Lisbon", "Portugal", "PT"), ("Porto", "Portugal", "PT")],
    ),
    (
        ["Astrid", "Erik", "Ingrid", "Lars", "Maja", "Oskar", "Elsa"],
        ["Lindqvist", "Johansson", "Andersson", "Nilsson", "Berg", "Larsson"],
        [("Stockholm", "Sweden", "SE"), ("Copenhagen", "Denmark", "DK"), ("Oslo", "Norway", "NO")],
    ),
    (
        ["Minh", "Linh", "Quang", "Thao", "Duc", "Hoa"],
        ["Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu"],
        [
            ("Ho Chi Minh City", "Vietnam", "VN"),
            ("Melbourne", "Australia", "AU"),
            ("Sydney", "Australia", "AU"),
        ],
    ),
    (
        ["Ji-woo", "Min-jun", "Seo-yeon", "Do-hyun", "Ha-eun"],
        ["Kim", "Park", "Choi", "Jung", "Kang"],
        [
            ("Seoul", "South Korea", "KR"),
            ("Toronto", "Canada", "CA"),
            ("Vancouver", "Canada", "CA"),
        ],
    ),
    (
        ["Ethan", "Maya", "Lucas", "Zoe", "Caleb", "Ava", "Marcus", "Jasmine"],
        ["Johnson", "Rivera", "Brooks", "Coleman", "Hayes", "Foster", "Reed"],
        [
            ("Austin", "United States", "US"),
            ("New York", "United States", "US"),
            ("Toronto", "Canada", "CA"),
            ("Seattle", "United States", "US"),
        ],
    ),
]

# (title, skills pool, headline pattern) per discipline.
DISCIPLINES = [
    (
        "Backend Engineer",
        [
            "Python",
            "Django",
            "PostgreSQL",
            "Go",
            "Kafka",
            "AWS",
            "Redis",
            "REST APIs",
            "Celery",
            "Docker",
        ],
        "Backend engineer focused on {a} and {b}",
    ),
    (
        "Frontend Engineer",
        [
            "TypeScript",
            "React",
            "CSS",
            "Accessibility",
            "Vue",
            "Next.js",
            "Design systems",
            "Testing Library",
        ],
        "Frontend engineer who cares about {a}",
    ),
    (
        "Full-stack Developer",
        ["Ruby on Rails", "JavaScript", "PostgreSQL", "React", "Node.js", "GraphQL", "Heroku"],
        "Full-stack developer, {a} and {b}",
    ),
    (
        "Data Scientist",
        [
            "Python",
            "Machine Learning",
            "Statistics",
            "SQL",
            "pandas",
            "PyTorch",
            "Experimentation",
            "dbt",
        ],
        "Data scientist turning {a} into decisions",
    ),
    (
        "Data Engineer",
        ["Airflow", "Spark", "SQL", "dbt", "Snowflake", "Python", "Kafka"],
        "Data engineer building pipelines with {a} and {b}",
    ),
    (
        "Machine Learning Engineer",
        ["PyTorch", "MLOps", "Kubernetes", "Python", "LLMs", "Computer Vision", "NLP"],
        "ML engineer shipping {a} to production",
    ),
    (
        "DevOps Engineer",
        ["Kubernetes", "Terraform", "AWS", "GCP", "CI/CD", "Prometheus", "Linux"],
        "Platform and reliability, mostly {a} and {b}",
    ),
    (
        "Product Designer",
        [
            "Figma",
            "User research",
            "Prototyping",
            "Design systems",
            "Accessibility",
            "Interaction design",
        ],
        "Product designer, {a} first",
    ),
    (
        "Product Manager",
        ["Roadmapping", "Discovery", "Analytics", "B2B SaaS", "Payments", "Stakeholder management"],
        "Product manager in {a}",
    ),
    (
        "iOS Engineer",
        ["Swift", "SwiftUI", "iOS", "Combine", "Core Data"],
        "iOS engineer who loves {a}",
    ),
    (
        "Android Engineer",
        ["Kotlin", "Android", "Jetpack Compose", "Coroutines", "Java"],
        "Android engineer, {a} and {b}",
    ),
    (
        "Security Engineer",
        [
            "Application security",
            "Threat modelling",
            "Cloud security",
            "Penetration testing",
            "SIEM",
        ],
        "Security engineer, {a}",
    ),
    (
        "QA Engineer",
        ["Test automation", "Playwright", "Cypress", "Python", "Exploratory testing"],
        "Quality engineer, {a} enthusiast",
    ),
    (
        "Engineering Manager",
        ["People management", "Hiring", "Agile", "System design", "Mentoring"],
        "Engineering manager who grows teams through {a}",
    ),
]
COMPANIES = [
    "Brightwave",
    "Kestrel Labs",
    "Northpeak Systems",
    "Lumen Health",
    "Harbour Bank",
    "Cobalt Logistics",
    "Fernhill Games",
    "Quillstack",
    "Tidewater Energy",
    "Orbital Retail",
    "Pinecrest Insurance",
    "Mosaic Media",
    "Bluefin Payments",
    "Atlas Mobility",
    "Verdant Foods",
    "Sable Analytics",
    "Granite Cloud",
    "Halcyon Travel",
    "Juniper Learning",
    "Riverstone Legal",
]
SENIORITY_BY_WEIGHT = [
    ("junior", 10),
    ("mid", 30),
    ("senior", 35),
    ("lead", 12),
    ("principal", 5),
    ("manager", 8),
]
SOURCE_WEIGHTS = [
    ("sourced", 40),
    ("referral", 15),
    ("event", 10),
    ("career_site", 12),
    ("applied", 13),
    ("import", 10),
]
SOURCE_DETAILS = {
    "referral": [
        "Referred by Sam in Platform",
        "Referred by a former colleague",
        "Alumni referral",
    ],
    "event": [
        "PyCon UK 2024",
        "React Summit",
        "Women in Tech meetup",
        "Data Council",
        "DevOpsDays",
    ],
    "career_site": ["Careers page sign-up", "Talent community form"],
    "applied": ["Applied: Senior Backend Engineer", "Applied: Product Designer"],
    "import": ["Spreadsheet from the 2023 graduate fair", "Old ATS export"],
    "sourced": ["LinkedIn search", "GitHub", "Conference speaker list", ""],
}
TAGS = [
    "silver medallist",
    "remote only",
    "open to relocation",
    "alumni",
    "open source",
    "speaker",
    "hiring manager liked",
    "future leader",
    "contract",
    "part-time",
]
NOTES = [
    "Great intro call. Happy where they are for now but open to a chat in the new year.",
    "Strong systems thinking. Asked thoughtful questions about our on-call setup.",
    "Met at the meetup — gave an excellent talk on {skill}. Follow up after the conference.",
    "Salary expectations are above our band for now; keep warm for senior openings.",
    "Prefers remote-first teams. Would consider hybrid two days a week at most.",
    "Finalist for the {title} role last spring; lost out narrowly. Hiring manager wants to stay in touch.",
    "Referred by a current engineer who worked with them for three years. Very positive reference.",
    "Not looking right now — just started a new role. Check back in six months.",
    "Interested in leadership track. Has mentored two juniors informally.",
    "Sent our engineering blog post about {skill}; they replied with good comments.",
    "Needs visa sponsorship; confirm with People Ops before the next conversation.",
    "Coffee chat booked for next month. Wants to hear about the product roadmap.",
    "Declined politely — family move planned. Said to reach out again next year.",
    "Very strong portfolio. Case study on onboarding flows was the best we've seen this year.",
]
# "Last contacted" comes from somewhere: a demo candidate contacted outside a campaign has one
# of these logged at that time (Note.Contact, what it was).
CONTACT_NOTES = [
    ("call", "Quick call about {skill} roles. Open to hearing about new openings later on."),
    ("call", "Caught up by phone: happy in the current team, ask again after their review."),
    ("message", "LinkedIn message about our {skill} work; they replied and asked for details."),
    ("meeting", "Coffee near the office. Curious about how our teams work with {skill}."),
    ("email", "Sent a personal email with the engineering blog post; short, friendly reply."),
]
PINNED_NOTES = [
    "Key contact for {skill} hires — always ask before reaching out about junior roles.",
    "Do not mention the old Brightwave project; they left on difficult terms.",
    "Prefers WhatsApp over email for quick questions.",
    "Available from September; notice period negotiable.",
]
SALARY = [
    "£65k–£75k",
    "£80k base + equity",
    "€70k",
    "€85k–€95k",
    "$140k",
    "Open to discuss",
    "£55k",
    "₹35 LPA",
    "SGD 120k",
]
AUTHORISATION = ["Citizen / permanent resident", "Visa sponsorship required", "Work permit held"]


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights, k=1)[0]


def _ascii(value: str) -> str:
    """'Wiśniewska' -> 'wisniewska', for email addresses and profile handles."""
    value = unicodedata.normalize("NFKD", value.lower().replace("ł", "l").replace("ø", "o"))
    return "".join(c for c in value.encode("ascii", "ignore").decode() if c.isalnum())


def _phone(rng: random.Random, region: str) -> str:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    if example is None:
        return ""
    national = str(example.national_number)
    for _ in range(5):
        tail = "".join(rng.choice("0123456789") for _ in range(4))
        candidate = phonenumbers.parse(f"+{example.country_code}{national[:-4]}{tail}")
        if phonenumbers.is_valid_number(candidate):
            return phonenumbers.format_number(candidate, phonenumbers.PhoneNumberFormat.E164)
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def _custom_fields(organization) -> dict[str, CustomField]:
    specs = [
        ("notice_weeks", "Notice period (weeks)", "number", []),
        ("work_authorisation", "Work authorisation", "choice", AUTHORISATION),
        ("salary_expectation", "Salary expectation", "text", []),
    ]
    fields = {}
    for position, (key, label, field_type, choices) in enumerate(specs):
        existing = CustomField.objects.filter(organization=organization, key=key).first()
        fields[key] = existing or custom_field_create(
            organization=organization,
            key=key,
            label=label,
            field_type=field_type,
            choices=choices,
            position=position,
        )
    return fields


@transaction.atomic
def seed_demo_candidates(*, organization, users, stdout) -> None:
    rng = random.Random(SEED)
    now = timezone.now()
    owners = [users[Role.RECRUITER], users[Role.RECRUITER], users[Role.ADMIN], None]
    actors = [users[Role.RECRUITER], users[Role.ADMIN]]
    _custom_fields(organization)

    candidates: list[Candidate] = []
    created_at: list = []
    contacted: list = []  # when each was last contacted (None: never)
    used_emails: set[str] = set()
    for index in range(CANDIDATE_COUNT):
        first_names, last_names, places = rng.choice(CULTURES)
        first, last = rng.choice(first_names), rng.choice(last_names)
        city, country, region = rng.choice(places)
        title, skill_pool, headline = rng.choice(DISCIPLINES)
        seniority = _weighted(rng, SENIORITY_BY_WEIGHT)
        prefix = {
            "senior": "Senior ",
            "lead": "Lead ",
            "principal": "Principal ",
            "junior": "Junior ",
        }.get(seniority, "")
        skills = rng.sample(skill_pool, k=min(len(skill_pool), rng.randint(3, 6)))
        email = f"{_ascii(first)}.{_ascii(last)}@{rng.choice(['example.com', 'example.org', 'example.net'])}"
        if email in used_emails:
            email = email.replace("@", f"{index}@")
        used_emails.add(email)
        source = _weighted(rng, SOURCE_WEIGHTS)
        status = _weighted(
            rng, [("active", 74), ("not_now", 12), ("hired", 8), ("do_not_contact", 6)]
        )
        joined = now - timedelta(days=rng.randint(3, 720), minutes=rng.randint(0, 1440))
        handle = f"{_ascii(first)}-{_ascii(last)}-{rng.randint(10, 99)}"
        custom = {}
        if rng.random() < 0.6:
            custom["notice_weeks"] = rng.choice([1, 2, 4, 4, 4, 8, 12, 13])
        if rng.random() < 0.5:
            custom["work_authorisation"] = rng.choice(AUTHORISATION)
        if rng.random() < 0.35:
            custom["salary_expectation"] = rng.choice(SALARY)
        candidates.append(
            Candidate(
                organization=organization,
                first_name=first,
                last_name=last,
                email=email,
                alternate_emails=[f"{_ascii(first)}@{_ascii(last)}.example"]
                if rng.random() < 0.08
                else [],
                phone=_phone(rng, region) if rng.random() < 0.65 else "",
                city=city,
                country=country,
                headline=headline.format(a=skills[0], b=skills[1]) if rng.random() < 0.7 else "",
                current_title=f"{prefix}{title}" if seniority != "manager" else title,
                current_company=rng.choice(COMPANIES),
                linkedin_url=f"https://www.linkedin.com/in/{handle}" if rng.random() < 0.75 else "",
                github_url=f"https://github.com/{handle}"
                if "Engineer" in title and rng.random() < 0.5
                else "",
                portfolio_url=f"https://{handle}.example.com" if "Designer" in title else "",
                skills=normalize_tags(skills),
                tags=normalize_tags(rng.sample(TAGS, k=rng.choice([0, 0, 1, 1, 2]))),
                seniority=seniority,
                source=source,
                source_detail=rng.choice(SOURCE_DETAILS[source]),
                owner=rng.choice(owners),
                status=status,
                not_now_until=(now + timedelta(days=rng.randint(20, 270))).date()
                if status == "not_now"
                else None,
                custom_fields=custom,
                engagement_score=None,
            )
        )
        created_at.append(joined)
        contacted.append(
            joined + timedelta(days=rng.randint(1, 60)) if rng.random() < 0.55 else None
        )

    Candidate.objects.bulk_create(candidates, batch_size=500)
    for index, (candidate, joined) in enumerate(zip(candidates, created_at, strict=True)):
        candidate.created_at = joined
        if contacted[index] and contacted[index] > now:
            contacted[index] = now - timedelta(hours=rng.randint(1, 48))
    Candidate.objects.bulk_update(candidates, ["created_at"], batch_size=500)
    CandidateContact.objects.bulk_create(
        [
            CandidateContact(candidate=candidate, organization=organization, last_contacted_at=when)
            for candidate, when in zip(candidates, contacted, strict=True)
            if when
        ],
        batch_size=500,
    )

    notes_written = 0
    noted = set(rng.sample(range(len(candidates)), k=80))
    for index, candidate in enumerate(candidates):
        joined = candidate.created_at
        actor = candidate.owner or rng.choice(actors)
        kind = Activity.Kind.IMPORTED if candidate.source == "import" else Activity.Kind.CREATED
        activity_record(
            candidate=candidate,
            kind=kind,
            actor=None if kind == Activity.Kind.IMPORTED else actor,
            summary=candidate.source_detail or f"Source: {candidate.get_source_display()}",
            occurred_at=joined,
        )
        age = (now - joined).days
        if candidate.status != "active" and age > 2:
            activity_record(
                candidate=candidate,
                kind=Activity.Kind.STATUS_CHANGED,
                actor=actor,
                summary=f"Active → {candidate.get_status_display()}"
                + (
                    f" until {candidate.not_now_until:%-d %b %Y}" if candidate.not_now_until else ""
                ),
                data={"from": "active", "to": candidate.status},
                occurred_at=joined + timedelta(days=rng.randint(1, age - 1)),
            )
        if candidate.tags and age > 2 and rng.random() < 0.5:
            activity_record(
                candidate=candidate,
                kind=Activity.Kind.EDITED,
                actor=actor,
                summary="Changed tags",
                data={"fields": ["tags"]},
                occurred_at=joined + timedelta(days=rng.randint(1, age - 1)),
            )
        if contacted[index]:
            contact, template = rng.choice(CONTACT_NOTES)
            author = candidate.owner or rng.choice(actors)
            note = Note.objects.create(
                organization=organization,
                candidate=candidate,
                author=author,
                body=template.format(skill=candidate.skills[0], title=candidate.current_title),
                contact=contact,
            )
            contacted_at = contacted[index]
            Note.objects.filter(pk=note.pk).update(created_at=contacted_at, updated_at=contacted_at)
            activity_record(
                candidate=candidate,
                kind=Activity.Kind.NOTE_ADDED,
                actor=author,
                summary=note.body[:200],
                data={"contact": contact},
                note=note,
                occurred_at=contacted_at,
            )
            notes_written += 1
        if index not in noted:
            continue
        count = rng.choice([1, 1, 2, 2, 3, 4])
        for number in range(count):
            pinned = number == 0 and rng.random() < 0.2
            template = rng.choice(PINNED_NOTES if pinned else NOTES)
            written_at = joined + timedelta(
                days=rng.randint(0, max(age - 1, 0)), minutes=rng.randint(5, 600)
            )
            written_at = min(written_at, now - timedelta(minutes=rng.randint(10, 600)))
            author = rng.choice(actors)
            note = Note.objects.create(
                organization=organization,
                candidate=candidate,
                author=author,
                body=template.format(skill=candidate.skills[0], title=candidate.current_title),
                pinned=pinned,
            )
            Note.objects.filter(pk=note.pk).update(created_at=written_at, updated_at=written_at)
            activity_record(
                candidate=candidate,
                kind=Activity.Kind.NOTE_ADDED,
                actor=author,
                summary=note.body[:200],
                note=note,
                occurred_at=written_at,
            )
            notes_written += 1
    resumes = _seed_resumes(candidates=candidates, actors=actors, now=now)
    duplicates = _seed_duplicates(organization=organization, candidates=candidates, now=now)
    stdout.write(
        f"  {len(candidates)} demo candidates with {notes_written} notes, {resumes} resumes "
        f"and {duplicates} possible duplicates to review."
    )


# --- resumes: real PDF and Word files whose text is extracted and searchable ---

UNIVERSITIES = [
    "University of Manchester",
    "TU München",
    "Universidade de Lisboa",
    "KTH Royal Institute of Technology",
    "IIT Bombay",
    "Sciences Po",
    "University of Toronto",
]


def _resume_lines(candidate: Candidate, rng: random.Random) -> list[str]:
    skills = candidate.skills or ["teamwork"]
    previous = rng.choice([c for c in COMPANIES if c != candidate.current_company])
    return [
        candidate.full_name,
        f"{candidate.current_title} - {candidate.city}, {candidate.country}",
        "",
        "Summary",
        candidate.headline or f"{candidate.current_title} with a taste for {skills[0]}.",
        "",
        "Experience",
        f"{candidate.current_title}, {candidate.current_company} (2021 - today)",
        f"Led work on {skills[0]} and {skills[-1]}; mentored two colleagues.",
        f"{candidate.current_title.split()[-1]}, {previous} (2017 - 2021)",
        f"Built and ran {skills[min(1, len(skills) - 1)]} for a team of eight.",
        "",
        "Education",
        f"BSc, {rng.choice(UNIVERSITIES)}",
        "",
        "Skills",
        ", ".join(skills),
    ]


def minimal_pdf(lines: list[str]) -> bytes:
    """A small valid one-page PDF showing `lines` in Helvetica (Latin-1 text)."""

    def escape(text: str) -> bytes:
        text = unicodedata.normalize("NFC", text).encode("latin-1", "replace")
        return text.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")

    body = (
        b"BT /F1 11 Tf 14 TL 72 760 Td "
        + b" ".join(b"(" + escape(line) + b") Tj T*" for line in lines)
        + b" ET"
    )
    return one_page_pdf(body)


def one_page_pdf(content: bytes, *, filters: bytes = b"") -> bytes:
    """A one-page PDF whose page content stream is `content` (stored as it is, declared with
    the /Filter `filters` when given, e.g. b"[/FlateDecode]"), with Helvetica as /F1."""
    declared = b" /Filter %s" % filters if filters else b""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d%s >>\nstream\n" % (len(content), declared) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, part in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + part + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def _docx(lines: list[str]) -> bytes:
    import io

    import docx

    document = docx.Document()
    document.add_heading(lines[0], level=1)
    for line in lines[1:]:
        if line in {"Summary", "Experience", "Education", "Skills"}:
            document.add_heading(line, level=2)
        elif line:
            document.add_paragraph(line)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _seed_resumes(*, candidates: list[Candidate], actors, now) -> int:
    """A dozen resumes, uploaded through the real service and read by the real extractor (in
    process, so the demo is searchable by resume text without waiting for a worker)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from candidates.models import Attachment
    from candidates.services.attachments import attachment_create, attachment_extract_text

    rng = random.Random(SEED + 1)
    chosen = rng.sample(candidates, k=min(12, len(candidates)))
    for index, candidate in enumerate(chosen):
        lines = _resume_lines(candidate, rng)
        stem = f"{_ascii(candidate.first_name)}-{_ascii(candidate.last_name)}-cv"
        if index % 3 == 0:
            upload = SimpleUploadedFile(f"{stem}.pdf", minimal_pdf(lines))
        else:
            upload = SimpleUploadedFile(f"{stem}.docx", _docx(lines))
        attachment = attachment_create(
            candidate=candidate,
            uploaded_file=upload,
            kind=Attachment.Kind.RESUME,
            actor=rng.choice(actors),
        )
        attachment_extract_text(attachment=attachment)
        uploaded = candidate.created_at + (now - candidate.created_at) * rng.uniform(0.05, 0.5)
        Attachment.objects.filter(pk=attachment.pk).update(uploaded_at=uploaded)
        Activity.objects.filter(
            candidate=candidate,
            kind=Activity.Kind.ATTACHMENT_ADDED,
            data__attachment_id=attachment.pk,
        ).update(occurred_at=uploaded)
    return len(chosen)


# --- duplicates: the same people entered twice, as happens after imports and events ---


def _seed_duplicates(*, organization, candidates: list[Candidate], now) -> int:
    """Three second profiles of existing people (same phone; a misspelt name at the same
    company; a primary email that is the other's alternate address), then the duplicate scan
    that flags them for review."""
    from candidates.models import DuplicateSuggestion
    from candidates.services.duplicates import duplicates_scan

    rng = random.Random(SEED + 2)
    with_phone = [c for c in candidates if c.phone]
    with_alternate = [c for c in candidates if c.alternate_emails]
    twins = []
    if with_phone:
        original = rng.choice(with_phone)
        twins.append(
            (
                original,
                {
                    "first_name": original.first_name,
                    "last_name": original.last_name,
                    "email": f"{_ascii(original.first_name)}{rng.randint(70, 99)}@mail.example",
                    "phone": original.phone,
                    "source": "event",
                    "source_detail": "Badge scan at a meetup",
                },
            )
        )
    original = rng.choice([c for c in candidates if len(c.last_name) > 4 and c.current_company])
    twins.append(
        (
            original,
            {
                "first_name": original.first_name,
                "last_name": original.last_name[:-2]
                + original.last_name[-1]
                + original.last_name[-2],
                "email": "",
                "current_company": original.current_company,
                "current_title": original.current_title,
                "source": "referral",
                "source_detail": "Referred by a colleague",
            },
        )
    )
    if with_alternate:
        original = rng.choice(with_alternate)
        twins.append(
            (
                original,
                {
                    "first_name": original.first_name,
                    "last_name": original.last_name,
                    "email": original.alternate_emails[0],
                    "source": "career_site",
                    "source_detail": "Applied on the careers page",
                },
            )
        )
    for original, fields in twins:
        twin = Candidate.objects.create(
            organization=organization,
            city=original.city,
            country=original.country,
            skills=original.skills[:2],
            **fields,
        )
        joined = now - timedelta(days=rng.randint(1, 20))
        Candidate.objects.filter(pk=twin.pk).update(created_at=joined)
        activity_record(
            candidate=twin,
            kind=Activity.Kind.CREATED,
            summary=twin.source_detail,
            occurred_at=joined,
        )
    duplicates_scan(organization=organization)
    return DuplicateSuggestion.objects.filter(
        organization=organization, state=DuplicateSuggestion.State.OPEN
    ).count()
