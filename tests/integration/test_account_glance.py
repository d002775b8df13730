"""The account page at a glance (issue 15.7): a summary header (ARR, renewal, priority and
why, health and why, next due item, last contact), a table of contents of the sections
(anchor links), the timeline near the top. The page's query count at two data sizes is
test_account_page.py's (the summary reads only what the page already loaded)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.factories import AccountFactory, ActivityFactory

pytestmark = pytest.mark.django_db


def _page(client, account) -> str:
    response = client.get(f"/account/{account.salesforce_id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_summary_header_shows_the_essentials(client, tam):
    today = timezone.localdate()
    account = AccountFactory(
        tam=tam,
        arr=Decimal(1_234_567),
        renewal_date=today + dt.timedelta(days=40),
        priority=1,
        health="amber",
    )
    ActivityFactory(
        account=account,
        kind="email",
        subject="Sent the plan",
        occurred_at=timezone.now() - dt.timedelta(days=3),
    )
    ActivityFactory(account=account, kind="note", subject="Internal", occurred_at=timezone.now())
    client.force_login(tam)
    html = _page(client, account)
    summary = html[html.index('class="card glance-summary"') : html.index('class="toc card"')]
    assert "$1,234,567" in summary
    assert (today + dt.timedelta(days=40)).strftime("%-d %b %Y") in summary
    assert "P1" in summary and "Amber" in summary
    # The last contact is the email, not the internal note logged after it.
    assert re.search(r'id="glance-last-contact">Email', summary)
    # P1 with no cadence call held: the cadence call is due now (before the renewal).
    assert re.search(r'id="glance-next-due"><a href="#engagement">Cadence call</a>', summary)


def test_renewal_is_next_due_when_no_cadence_applies(client, tam):
    today = timezone.localdate()
    account = AccountFactory(tam=tam, priority=4, renewal_date=today + dt.timedelta(days=10))
    client.force_login(tam)
    html = _page(client, account)
    assert re.search(r'id="glance-next-due"><a href="#facts-h">Renewal</a>', html)
    assert 'id="glance-last-contact">None logged' in html


def test_table_of_contents_links_to_every_section_and_timeline_comes_first(client, tam):
    account = AccountFactory(tam=tam)
    client.force_login(tam)
    html = _page(client, account)
    toc = html[
        html.index('class="toc card"') : html.index("</nav>", html.index('class="toc card"'))
    ]
    anchors = re.findall(r'href="#([^"]+)"', toc)
    assert anchors[0] == "timeline" and len(anchors) >= 7
    for anchor in anchors:
        assert f'id="{anchor}"' in html, anchor
    assert html.index('id="timeline"') < html.index('id="facts-h"')
