"""factory_boy factories shared by every app's tests. They run under scopes_disabled()."""

import factory
from allauth.account.models import EmailAddress
from django_scopes import scopes_disabled

from crm.models import Membership, Organization, Role, User


class ScopesDisabledFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with scopes_disabled():
            return super()._create(model_class, *args, **kwargs)


class UserFactory(ScopesDisabledFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def verified(obj, create, extracted, **kwargs):
        if create:
            obj.save()
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


class OrganizationFactory(ScopesDisabledFactory):
    class Meta:
        model = Organization
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Organisation {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    time_zone = "Europe/London"
    postal_address = "1 Example Street\nLondon"
    sender_name = "Sam Sender"
    sender_email = factory.LazyAttribute(lambda o: f"talent@{o.slug}.example")

    @factory.post_generation
    def sending_domain_verified(obj, create, extracted, **kwargs):
        """The sender's domain comes verified, as its admin would have done through DNS, so
        that campaigns launch and send; `sending_domain_verified=False` leaves it unverified."""
        if create and extracted is not False:
            from campaigns.tests.factories import verified_sending_domain

            verified_sending_domain(obj)


class MembershipFactory(ScopesDisabledFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.RECRUITER
