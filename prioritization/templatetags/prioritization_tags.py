"""`{% load prioritization_tags %}`: the `rule_name` filter shows a rule id as its name.

The priority panels are included as templates (`prioritization/account_panel.html`,
`changes.html`, `p1_balance.html`, `pending_exceptions.html`) with the selectors'
context, not through inclusion tags."""

from __future__ import annotations

from django import template

from prioritization.rules import rule_name as _rule_name

register = template.Library()


@register.filter
def rule_name(rule_id: str) -> str:
    """`{{ decision.decided_by|rule_name }}`: the rule's name, never its id, for people."""
    return _rule_name(rule_id)
