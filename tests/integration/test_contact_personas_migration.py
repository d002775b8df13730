"""portfolio 0011/0012: a contact's one persona becomes its one persona of many
("select the persona(s) that apply to them", csm-account-engagement.md)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("portfolio", "0010_account_fillfactor")]


@pytest.mark.django_db(transaction=True)
def test_each_contacts_persona_becomes_its_one_persona():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    Region = old.get_model("portfolio", "Region")
    Account = old.get_model("portfolio", "Account")
    Contact = old.get_model("portfolio", "Contact")
    Region.objects.get_or_create(code="US-EAST", defaults={"name": "US East"})
    account = Account.objects.create(
        salesforce_id="001MIGRATION00001", name="Old", region_id="US-EAST"
    )
    dev = Contact.objects.create(account=account, name="Dev", persona="development_lead")
    sec = Contact.objects.create(account=account, name="Sec", persona="security_lead")
    none = Contact.objects.create(account=account, name="None", persona="")

    executor = MigrationExecutor(connection)
    executor.migrate(latest)
    from portfolio.models import Contact as NewContact

    personas = {
        c.name: sorted(p.key for p in c.personas.all())
        for c in NewContact.objects.filter(pk__in=[dev.pk, sec.pk, none.pk])
    }
    assert personas == {"Dev": ["development_lead"], "Sec": ["security_lead"], "None": []}
