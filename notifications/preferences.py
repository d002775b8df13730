"""Per-user preferences (kind x channel) over per-role defaults.

Defaults follow what each role acts on (DESIGN.md, Users): a TAM on their own book; a
manager on the team's red accounts, approvals and uncovered renewals; an admin on the
syncs. A sales manager (the EMEA exceptions' deciders, `portfolio.roles`) on exceptions.
Chat is on only for what a whole team should see (an account turning red, a triage
issue); it posts only where the team has a webhook.
"""

from __future__ import annotations

from django.contrib.auth.models import User

from notifications.models import Channel, Kind, NotificationPreference
from portfolio.roles import is_sales_manager, role_of

K, C = Kind, Channel

DEFAULTS: dict[str, dict[str, set[str]]] = {
    "tam": {
        C.IN_APP: {
            K.HEALTH_AT_RISK,
            K.PRIORITY_CHANGED,
            K.EXCEPTION_DECIDED,
            K.TRIAGE_ISSUE,
            K.CADENCE_OVERDUE,
        },
        C.EMAIL: {K.HEALTH_AT_RISK, K.PRIORITY_CHANGED, K.EXCEPTION_DECIDED, K.CADENCE_OVERDUE},
        C.CHAT: {K.HEALTH_AT_RISK, K.TRIAGE_ISSUE},
    },
    "manager": {
        C.IN_APP: {
            K.HEALTH_AT_RISK,
            K.EXCEPTION_PENDING,
            K.EXCEPTION_DECIDED,
            K.TRIAGE_ISSUE,
            K.RENEWAL_NO_TAM,
        },
        C.EMAIL: {K.EXCEPTION_PENDING, K.RENEWAL_NO_TAM},
        C.CHAT: {K.HEALTH_AT_RISK, K.TRIAGE_ISSUE},
    },
    "admin": {
        C.IN_APP: {K.SYNC_PROBLEM, K.EXCEPTION_PENDING},
        C.EMAIL: {K.SYNC_PROBLEM},
        C.CHAT: set(),
    },
    "sales": {
        C.IN_APP: {K.EXCEPTION_PENDING, K.EXCEPTION_DECIDED},
        C.EMAIL: {K.EXCEPTION_PENDING},
        C.CHAT: set(),
    },
    "none": {C.IN_APP: set(), C.EMAIL: set(), C.CHAT: set()},
}


def default_role(user: User) -> str:
    """The row of DEFAULTS a user starts from."""
    role = role_of(user)
    if role is None and is_sales_manager(user):
        return "sales"
    return role or "none"


def enabled_kinds(user: User, channel: str) -> set[str]:
    """The kinds this user wants on this channel: one query (their stored choices)."""
    kinds = set(DEFAULTS[default_role(user)][channel])
    for kind, enabled in NotificationPreference.objects.filter(
        user=user, channel=channel
    ).values_list("kind", "enabled"):
        (kinds.add if enabled else kinds.discard)(kind)
    return kinds


def preference_grid(user: User) -> dict[str, dict[str, bool]]:
    """{kind: {channel: enabled}} for the preferences page (one query)."""
    base = DEFAULTS[default_role(user)]
    grid = {k: {c: k in base[c] for c in Channel.values} for k in Kind.values}
    for kind, channel, enabled in NotificationPreference.objects.filter(user=user).values_list(
        "kind", "channel", "enabled"
    ):
        if kind in grid and channel in grid[kind]:
            grid[kind][channel] = enabled
    return grid
