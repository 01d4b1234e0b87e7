"""Create the demo organisation (once) so `make run` shows a working Rapport.

Idempotent: a second run changes nothing. Apps add their demo data through `seed_demo_data`
hooks registered in DEMO_SEEDERS, so the demo always shows every feature.
"""

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.module_loading import import_string
from django_scopes import scope, scopes_disabled

from crm.models import Membership, Organization, Role, User

DEMO_SLUG = "demo"
DEMO_PASSWORD = "rapport-demo"  # noqa: S105 - documented demo login
DEMO_USERS = [
    ("admin@demo.rapport.test", "Alex Morgan", "Head of Talent", Role.ADMIN),
    ("recruiter@demo.rapport.test", "Riya Patel", "Senior Recruiter", Role.RECRUITER),
    ("viewer@demo.rapport.test", "Victor Hale", "VP People", Role.VIEWER),
]
# Dotted paths of functions `(organization, users, stdout) -> None` that add an app's demo data.
DEMO_SEEDERS: list[str] = [
    "candidates.demo.seed_demo_candidates",
    "pipelines.demo.seed_demo_data",
    # The demo's sender domain, verified without DNS (it is the demo): before any campaign.
    "campaigns.demo_sending_domain.seed_demo_sending_domain",
    "campaigns.demo_sequences.seed_demo_sequence",
    "campaigns.demo_broadcast.seed_demo_broadcast",
    "campaigns.demo_preferences.seed_demo_preferences",
]


class Command(BaseCommand):
    help = "Create the demo organisation with an admin, a recruiter and a viewer login."

    @transaction.atomic
    def handle(self, *args, **options):
        with scopes_disabled():
            if Organization.objects.filter(slug=DEMO_SLUG).exists():
                self.stdout.write("Demo organisation already exists; nothing to do.")
                return
            organization = Organization.objects.create(
                name="Northwind Talent",
                slug=DEMO_SLUG,
                time_zone="Europe/London",
                postal_address="Northwind Talent Ltd\n12 Market Street\nLondon EC2A 4NE\nUnited Kingdom",
                sender_name="Riya Patel",
                sender_email="riya@northwind.example",
            )
            users = {}
            for email, name, title, role in DEMO_USERS:
                user, created = User.objects.get_or_create(
                    email=email, defaults={"name": name, "job_title": title}
                )
                if created:
                    user.set_password(DEMO_PASSWORD)
                    user.save()
                EmailAddress.objects.update_or_create(
                    user=user, email=email, defaults={"verified": True, "primary": True}
                )
                Membership.objects.create(organization=organization, user=user, role=role)
                users[role] = user
        from crm.services import organization_setup_defaults

        with scope(organization=organization):
            organization_setup_defaults(organization=organization)
            for path in DEMO_SEEDERS:
                import_string(path)(organization=organization, users=users, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(f"Demo organisation '{organization.name}' created."))
