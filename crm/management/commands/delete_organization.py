"""Delete a whole tenant: the organisation and everything it owns (candidates, files' rows,
pools and their history, campaigns and their emails, events). For operators; there is no
undo. The slug must be given twice (`--confirm`), and the command prints what went."""

from django.core.management.base import BaseCommand, CommandError
from django_scopes import scopes_disabled

from crm.services import organization_delete


class Command(BaseCommand):
    help = "Delete an organisation and all its data. Needs --confirm with the slug again."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--confirm", default="", help="The slug again, to confirm.")

    def handle(self, *args, slug: str, confirm: str, **options):
        from crm.models import Organization

        with scopes_disabled():
            organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"No organisation has the slug {slug!r}.")
        if confirm != slug:
            raise CommandError(
                f"This deletes {organization.name!r} and all its data for good. "
                f"Run it again with --confirm {slug} to go ahead."
            )
        deleted = organization_delete(organization=organization)
        for label, count in sorted(deleted.items()):
            if count:
                self.stdout.write(f"{label}: {count}")
        self.stdout.write(self.style.SUCCESS(f"Organisation {organization.name!r} deleted."))
