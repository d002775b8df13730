"""The account page's product usage panel: trends of the last 12 months, the latest
month's figures, and what the health engine reads from them (evidence, and whether the
TAM's own answer wins). A fixed number of queries whatever the length of the history."""

from __future__ import annotations

import datetime as dt

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from portfolio import datacache
from portfolio.models import Account
from triage import health
from triage.models import HealthSignals
from usage import charts
from usage.models import MetricKind
from usage.selectors import account_trends, usage_measures_for_accounts

SIGNAL_LABELS = {
    "user_adoption": "User adoption",
    "adoption_dropped": "Adoption month over month",
    "major_releases_behind": "Releases",
    "tickets_per_month": "Tickets a month",
    "full_devops_lifecycle": "DevOps lifecycle",
    "uses_new_features": "New features",
}


PANEL = "usage/account.html#panel"


def account_usage_panel_html(account: Account, *, today: dt.date) -> SafeString:
    """The panel as HTML (`account_usage_panel` rendered), kept under the data version
    (portfolio/datacache.py) so the account page can show it at once next time. The same
    for every user who may see the account: it has no form and names no viewer."""
    return datacache.cached(
        "usage_panel",
        (account.pk, today),
        lambda: render_to_string(
            PANEL, {"account": account, **account_usage_panel(account, today=today)}
        ),
    )


def account_usage_panel_known(account: Account, *, today: dt.date) -> SafeString | None:
    """The panel's HTML if the panel was rendered since the data last changed (no query),
    else None: the account page then loads it with htmx after it shows."""
    html = datacache.peek("usage_panel", (account.pk, today))
    # Our own rendering (`account_usage_panel_html`), trusted as the page's other cached
    # parts are (charts).
    return mark_safe(html) if isinstance(html, str) else None  # nosec B703 B308 # HTML rendered by this module's template


def account_usage_panel(account: Account, *, today: dt.date) -> dict:
    """Context of the panel (about 7 queries: metrics, months, summary, rule sets,
    releases, the TAM's signals)."""
    data = account_trends(account, today=today)
    measured = usage_measures_for_accounts([account], today=today).get(account.pk)
    signals = []
    thresholds = measured[1] if measured else health.UsageThresholds()
    if measured:
        tam = HealthSignals.objects.filter(account=account).first()
        for name, (value, evidence) in health.usage_signals(*measured).items():
            answered = getattr(tam, name, None) if tam is not None else None
            answered = None if answered == "" else answered
            signals.append(
                {
                    "label": SIGNAL_LABELS.get(name, name),
                    "value": value,
                    "evidence": evidence,
                    "tam_answer": answered,
                }
            )
    charts_out = []
    if data["has_usage"]:
        low, healthy = float(thresholds.adoption_low_below), float(thresholds.adoption_healthy_from)
        charts_out.append(
            charts.trend(
                data["adoption"],
                title="User adoption (active users / seats)",
                unit="%",
                lines=((100 * low, f"{low:.0%}"), (100 * healthy, f"{healthy:.0%}")),
                ceiling=100,
            )
        )
        for t in data["trends"]:
            if t.metric.kind == MetricKind.VERSION:
                continue
            charts_out.append(
                charts.trend(t.points, title=f"{t.metric.label} ({t.metric.unit or 'count'})")
            )
    versions: list[tuple[dt.date, str]] = next(
        (t.texts for t in data["trends"] if t.metric.name == "version"), []
    )
    return {
        "usage": data,
        "usage_charts": charts_out,
        "usage_signals": signals,
        "usage_versions": versions[-6:],
        "usage_summary": data["summary"],
    }
