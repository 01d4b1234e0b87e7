"""The organisation's email settings page: sender, postal address and sending rules."""

from django.db import transaction

from campaigns.models import EmailSettings
from campaigns.services.domains import sending_domain_ensure, unverified_sender_domain
from crm.models import Organization

SENDER_FIELDS = ("sender_name", "sender_email", "postal_address")


@transaction.atomic
def email_settings_update(
    *, organization: Organization, sender: dict, rules: dict
) -> EmailSettings:
    """Save the sender fields on the organisation and the rules on its EmailSettings."""
    for name in SENDER_FIELDS:
        setattr(organization, name, sender[name])
    organization.save(update_fields=list(SENDER_FIELDS))
    settings, _ = EmailSettings.objects.get_or_create(organization=organization)
    for name, value in rules.items():
        setattr(settings, name, value)
    settings.save()
    # A new sender domain appears under "Sending domains", where an admin verifies it and can
    # start a warm-up.
    sending_domain_ensure(organization=organization)
    return settings


def email_settings_problems(*, organization: Organization) -> list[str]:
    """What stops every campaign from launching (shown on the settings page)."""
    problems = []
    if not organization.sender_email:
        problems.append("No sender address: campaigns cannot launch.")
    unverified = unverified_sender_domain(organization=organization)
    if unverified:
        problems.append(
            f"The domain of your sender address, {unverified}, is not verified: add its DNS "
            "record under Sending domains below, then press Check now. Until then campaigns "
            "cannot launch and campaign emails from it wait."
        )
    if not organization.postal_address.strip():
        problems.append(
            "No postal address: the law requires it in every campaign email, so campaigns "
            "cannot launch."
        )
    return problems
