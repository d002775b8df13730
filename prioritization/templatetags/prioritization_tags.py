"""`{% load prioritization_tags %}`: the `rule_name` filter shows a rule id as its name.

The priority panels are partials included with the selectors' context, not inclusion
tags: `prioritization/account.html#panel` (and its `#expectations`, `#exception-form`),
`prioritization/index.html#changes`, `#p1_balance`, `#pending_exceptions`."""

from __future__ import annotations

from django import template

from prioritization.rules import rule_name as _rule_name

register = template.Library()


@register.filter
def rule_name(rule_id: str) -> str:
    """`{{ decision.decided_by|rule_name }}`: the rule's name, never its id, for people."""
    return _rule_name(rule_id)
