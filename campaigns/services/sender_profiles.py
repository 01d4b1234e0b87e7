"""A recruiter's sender profile: the name, job title and signature campaign emails show for
them (the `recruiter.name`, `recruiter.title` and `recruiter.signature` merge fields)."""

from django.db import transaction

from campaigns.models import SenderProfile


def sender_profile_get(*, organization, user) -> SenderProfile:
    return SenderProfile.objects.filter(organization=organization, user=user).first() or (
        SenderProfile(organization=organization, user=user)
    )


@transaction.atomic
def sender_profile_update(
    *, organization, user, name: str, job_title: str, signature: str
) -> SenderProfile:
    """Name and job title are the user's own (every organisation sees them); the signature is
    per organisation (it usually names the company)."""
    user.name, user.job_title = name.strip(), job_title.strip()
    user.save(update_fields=["name", "job_title"])
    profile, _ = SenderProfile.objects.update_or_create(
        organization=organization, user=user, defaults={"signature": signature.strip()}
    )
    return profile
