"""What demo candidates told the preference centre (registered in crm seed_demo's
DEMO_SEEDERS, after the broadcast): about a third of the reachable candidates chose role
families fitting their job, places (their own city, sometimes another) and some are open to
remote work; and a draft broadcast targets those interested in engineering in London or
remote, so the campaign page shows the targeting and the audience it leaves. Deterministic."""

import random

from campaigns.models import (
    CandidateEmailPreference,
    DefaultRoleFamily,
    DefaultTopic,
    EmailTemplate,
)
from campaigns.services.campaigns import campaign_create_broadcast
from campaigns.services.role_families import role_families_ensure_defaults
from candidates.models import Candidate, SavedSearch
from crm.models import Role

SEED = 20250301
NAME = "Staff Backend Engineer: London or remote"
# The role family of a demo job title (candidates/demo.py DISCIPLINES): engineering, unless
# the title ends with one of these.
FAMILY_BY_TITLE_END = {
    "Data Scientist": DefaultRoleFamily.DATA,
    "Data Engineer": DefaultRoleFamily.DATA,
    "Machine Learning Engineer": DefaultRoleFamily.DATA,
    "Product Designer": DefaultRoleFamily.DESIGN,
    "Product Manager": DefaultRoleFamily.PRODUCT,
}
OTHER_PLACES = ["London", "Berlin", "Amsterdam", "Lisbon", "Manchester", "Dublin"]
OTHER_ROLES = ["Developer advocate", "Solutions engineer", "Technical writer"]


def _family(title: str) -> str:
    return next(
        (family for end, family in FAMILY_BY_TITLE_END.items() if title.endswith(end)),
        DefaultRoleFamily.ENGINEERING,
    )


def seed_demo_preferences(*, organization, users, stdout) -> None:
    rng = random.Random(SEED)
    role_families_ensure_defaults(organization=organization)
    candidates = list(
        Candidate.objects.live()
        .filter(organization=organization)
        .exclude(email="")
        .exclude(status=Candidate.Status.DO_NOT_CONTACT)
        .order_by("pk")
        .only("pk", "current_title", "city")
    )
    chosen = [c for c in candidates if rng.random() < 0.35]
    all_families = [value for value, _ in DefaultRoleFamily.choices]
    preferences = []
    for candidate in chosen:
        families = [_family(candidate.current_title)]
        if rng.random() < 0.25:
            families.append(rng.choice([f for f in all_families if f not in families]))
        places = [candidate.city] if candidate.city and rng.random() < 0.8 else []
        if rng.random() < 0.3:
            places.append(rng.choice([p for p in OTHER_PLACES if p not in places]))
        preferences.append(
            CandidateEmailPreference(
                organization=organization,
                candidate=candidate,
                interested_role_families=families,
                interested_roles=[rng.choice(OTHER_ROLES)] if rng.random() < 0.1 else [],
                interested_locations=places,
                open_to_remote=rng.random() < 0.4,
                frequency=rng.choice(["", "", "", "weekly", "monthly"]),
            )
        )
    # Candidates with a preferences row already (the demo's unsubscribe) keep what they chose
    # and get these interests.
    CandidateEmailPreference.objects.bulk_create(
        preferences,
        update_conflicts=True,
        unique_fields=["candidate"],
        update_fields=[
            "interested_role_families",
            "interested_roles",
            "interested_locations",
            "open_to_remote",
            "frequency",
        ],
    )

    recruiter = users.get(Role.RECRUITER)
    search = SavedSearch.objects.filter(
        organization=organization, owner=recruiter, name="Senior candidates"
    ).first()
    template = EmailTemplate.objects.filter(organization=organization, name="Checking in").first()
    if search is not None and template is not None:
        campaign_create_broadcast(
            organization=organization,
            user=recruiter,
            name=NAME,
            topic=DefaultTopic.JOBS,
            template=template,
            saved_searches=[search],
            interest_role_families=[DefaultRoleFamily.ENGINEERING],
            interest_locations=["London", "Remote"],
            interest_include_unstated=True,
        )
    stdout.write(
        f"Demo interests for {len(preferences)} candidates and the draft broadcast “{NAME}”."
    )
