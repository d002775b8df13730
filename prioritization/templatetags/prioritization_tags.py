"""Panels other pages include: `{% load prioritization_tags %}` then
`{% priority_panel account %}`, `{% pending_exceptions_panel %}`,
`{% p1_balance_panel tams %}`, `{% priority_changes_panel %}`. Each runs a fixed number of
queries through the selectors. The `rule_name` filter shows a rule id as its name."""

from __future__ import annotations

from typing import Any

from django import template

from prioritization.forms import ExceptionRequestForm
from prioritization.rules import rule_name as _rule_name
from prioritization.selectors import (
    account_priority_panel,
    changes_for_tam,
    p1_balance,
    pending_exceptions_for_manager,
)

register = template.Library()


@register.filter
def rule_name(rule_id: str) -> str:
    """`{{ decision.decided_by|rule_name }}`: the rule's name, never its id, for people."""
    return _rule_name(rule_id)


def _user(context: template.Context):
    request = context.get("request")
    return getattr(request, "user", None) or context.get("user")


@register.inclusion_tag("prioritization/account_panel.html", takes_context=True)
def priority_panel(context: template.Context, account) -> dict[str, Any]:
    panel = account_priority_panel(_user(context), account)
    panel.update(form=ExceptionRequestForm(), request=context.get("request"))
    panel["csrf_token"] = context.get("csrf_token")
    return panel


@register.inclusion_tag("prioritization/pending_exceptions.html", takes_context=True)
def pending_exceptions_panel(context: template.Context) -> dict[str, Any]:
    user = _user(context)
    return {
        "pending": list(pending_exceptions_for_manager(user)),
        "user": user,
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("prioritization/p1_balance.html")
def p1_balance_panel(tams) -> dict[str, Any]:
    return {"balance": p1_balance(tams)}


@register.inclusion_tag("prioritization/changes.html", takes_context=True)
def priority_changes_panel(context: template.Context, since=None) -> dict[str, Any]:
    return {"changes": list(changes_for_tam(_user(context), since)[:100])}
