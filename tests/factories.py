"""factory_boy factories for the whole project (STYLE.md rule 14)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from portfolio import models as pm
from prioritization import models as prm

PASSWORD = "portfolio-test-pw"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password(PASSWORD)

    @classmethod
    def _create(cls, model_class, *args, role: str | None = None, **kwargs):
        """`role` is the group to join: TAM, Manager or Admin."""
        user = super()._create(model_class, *args, **kwargs)
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = pm.Team

    name = factory.Sequence(lambda n: f"Team {n}")
    manager = factory.SubFactory(UserFactory, role="Manager")


def region(code: str = "US-EAST") -> pm.Region:
    return pm.Region.objects.get(code=code)


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = pm.Account

    salesforce_id = factory.Sequence(lambda n: f"001{n:015d}")
    name = factory.Sequence(lambda n: f"Account {n}")
    arr = Decimal("250000.00")
    region = factory.LazyFunction(region)
    segment = pm.Segment.ENTERPRISE
    renewal_date = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=200))
    customer_since = dt.date(2023, 1, 1)
    onboarding_started = dt.date(2023, 1, 10)
    onboarding_completed = dt.date(2023, 3, 1)


class OpportunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = pm.Opportunity

    salesforce_id = factory.Sequence(lambda n: f"006{n:015d}")
    account = factory.SubFactory(AccountFactory)
    account_salesforce_id = factory.LazyAttribute(lambda o: o.account.salesforce_id)
    name = factory.Sequence(lambda n: f"Opportunity {n}")
    type = "Renewal"
    stage_name = "Prospecting"
    close_date = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=90))
    amount = Decimal("50000")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = pm.Contact

    account = factory.SubFactory(AccountFactory)
    name = factory.Faker("name")
    email = factory.Faker("email")

    @factory.post_generation
    def personas(self, create, extracted, **kwargs):
        """`ContactFactory(personas=["development_lead", "security_lead"])`."""
        if create and extracted:
            pm.KeyPersona.objects.bulk_create(
                [pm.KeyPersona(key=k) for k in extracted], ignore_conflicts=True
            )
            self.personas.set(extracted)


class ActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = pm.Activity

    account = factory.SubFactory(AccountFactory)
    kind = pm.ActivityKind.CALL
    occurred_at = factory.LazyFunction(timezone.now)
    subject = "Call"


class ApprovedExceptionFactory(factory.django.DjangoModelFactory):
    """An approved priority exception to P1 ("until the next quarterly review" unless
    `expires_on` is given)."""

    class Meta:
        model = prm.PriorityException

    account = factory.SubFactory(AccountFactory)
    requested_priority = 1
    reason = "strategic"
    requested_by = factory.SelfAttribute("account.tam")
    status = prm.ExceptionStatus.APPROVED
    decided_by = factory.SubFactory(UserFactory)
