"""The demo organisation's sending domain (registered in crm seed_demo's DEMO_SEEDERS, before
the campaigns): northwind.example, marked verified without a DNS check because this is the
demo — `.example` names cannot carry DNS records, and `make run` must launch campaigns out of
the box. A real organisation verifies its domain with a DNS TXT record (Settings → Email)."""

from campaigns.services.domains import sending_domain_mark_verified


def seed_demo_sending_domain(*, organization, users, stdout) -> None:
    domain = sending_domain_mark_verified(organization=organization)
    if domain is not None:
        stdout.write(f"Demo sending domain {domain.domain} marked verified (demo only).")
