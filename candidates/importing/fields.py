"""The candidate fields a spreadsheet column can be imported as, and guessing them from headers.

Header names are compared after `header_key` folds them ("E-mail Address" → "emailaddress"),
so one alias covers the spellings of LinkedIn, Greenhouse, Lever, Workable and hand-made files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

IGNORE = ""
CUSTOM_PREFIX = "custom:"


@dataclass(frozen=True)
class ImportField:
    key: str
    label: str
    group: str
    aliases: tuple[str, ...] = ()


FIELDS: tuple[ImportField, ...] = (
    ImportField(
        "first_name",
        "First name",
        "Name",
        ("firstname", "givenname", "forename", "first", "prenom", "vorname"),
    ),
    ImportField("last_name", "Last name", "Name", ("lastname", "surname", "familyname", "last")),
    ImportField(
        "full_name",
        "Full name (split into first and last)",
        "Name",
        ("name", "fullname", "candidatename", "candidate", "contactname", "displayname"),
    ),
    ImportField(
        "email",
        "Email",
        "Contact",
        ("email", "emailaddress", "mail", "personalemail", "workemail", "primaryemail", "emails"),
    ),
    ImportField(
        "alternate_emails",
        "Alternate emails",
        "Contact",
        ("alternateemails", "alternateemail", "otheremails", "otheremail", "secondaryemail"),
    ),
    ImportField(
        "phone",
        "Phone",
        "Contact",
        (
            "phone",
            "phonenumber",
            "phones",
            "mobile",
            "mobilephone",
            "mobilenumber",
            "cell",
            "cellphone",
            "telephone",
            "tel",
        ),
    ),
    ImportField("city", "City", "Location", ("city", "town")),
    ImportField("country", "Country", "Location", ("country", "countryregion")),
    ImportField(
        "location",
        "Location (“City, Country”, split)",
        "Location",
        ("location", "address", "currentlocation", "basedin"),
    ),
    ImportField("headline", "Headline", "Work", ("headline", "profileheadline", "tagline")),
    ImportField(
        "current_title",
        "Current title",
        "Work",
        (
            "currenttitle",
            "title",
            "jobtitle",
            "position",
            "currentposition",
            "role",
            "occupation",
            "currentjobtitle",
        ),
    ),
    ImportField(
        "current_company",
        "Current company",
        "Work",
        (
            "currentcompany",
            "company",
            "companyname",
            "organisation",
            "organization",
            "employer",
            "currentemployer",
        ),
    ),
    ImportField("seniority", "Seniority", "Work", ("seniority", "senioritylevel", "level")),
    ImportField("skills", "Skills", "Work", ("skills", "skill", "competencies", "expertise")),
    ImportField(
        "linkedin_url",
        "LinkedIn URL",
        "Links",
        ("linkedin", "linkedinurl", "linkedinprofile", "url", "profileurl", "publicprofileurl"),
    ),
    ImportField("github_url", "GitHub URL", "Links", ("github", "githuburl", "githubprofile")),
    ImportField(
        "portfolio_url",
        "Portfolio / website URL",
        "Links",
        ("portfolio", "portfoliourl", "website", "personalwebsite", "websiteurl", "homepage"),
    ),
    ImportField(
        "links",
        "Links (sorted into LinkedIn, GitHub and portfolio)",
        "Links",
        ("links", "urls", "profiles", "sociallinks"),
    ),
    ImportField("tags", "Tags", "Relationship", ("tags", "tag", "labels")),
    ImportField(
        "source_detail",
        "Source detail",
        "Relationship",
        ("source", "sources", "sourcedetail", "origin", "referrer", "referredby"),
    ),
    ImportField(
        "owner_email",
        "Owner (member's email)",
        "Relationship",
        ("owner", "owneremail", "recruiter", "recruiteremail", "ownedby", "candidateowner"),
    ),
    ImportField("status", "Status", "Relationship", ("status", "candidatestatus")),
    ImportField(
        "not_now_until",
        "Not now until (date)",
        "Relationship",
        ("notnowuntil", "notnowdate", "backon", "recontacton", "recontactdate"),
    ),
)

FIELDS_BY_KEY = {f.key: f for f in FIELDS}

_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def header_key(header: str) -> str:
    """'E-mail Address ' -> 'emailaddress'; 'LinkedIn URL' -> 'linkedinurl'."""
    return _NOT_ALNUM.sub("", header.casefold().replace("é", "e"))


def target_label(target: str, custom_labels: dict[str, str]) -> str:
    if target.startswith(CUSTOM_PREFIX):
        return custom_labels.get(target[len(CUSTOM_PREFIX) :], target[len(CUSTOM_PREFIX) :])
    field = FIELDS_BY_KEY.get(target)
    return field.label if field else target


def guess_mapping(headers: list[str], custom_fields: list) -> list[str]:
    """One target per header ('' = ignore); each target is used by at most one column."""
    aliases: dict[str, str] = {}
    for field in FIELDS:
        for alias in (field.key.replace("_", ""), *field.aliases):
            aliases.setdefault(alias, field.key)
    for custom in custom_fields:
        for alias in (header_key(custom.key), header_key(custom.label)):
            aliases.setdefault(alias, CUSTOM_PREFIX + custom.key)
    used: set[str] = set()
    mapping = []
    for header in headers:
        target = aliases.get(header_key(header), IGNORE)
        if target in used:
            target = IGNORE
        if target:
            used.add(target)
        mapping.append(target)
    return mapping


def target_choices(custom_fields: list) -> list:
    """Grouped choices for a column's <select>: ignore, the fields by group, custom fields."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for field in FIELDS:
        groups.setdefault(field.group, []).append((field.key, field.label))
    choices: list = [(IGNORE, "— Don't import —")]
    choices += [(group, options) for group, options in groups.items()]
    if custom_fields:
        choices.append(
            (
                "Custom fields",
                [(CUSTOM_PREFIX + custom.key, custom.label) for custom in custom_fields],
            )
        )
    return choices
