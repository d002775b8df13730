"""Template helpers of the workspace pages, and the saved-views panel of the accounts table."""

from __future__ import annotations

import datetime as dt

from django import template

from workspace.selectors import saved_views_for

register = template.Library()


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key) if mapping else None


@register.filter
def inbox_status(item, today: dt.date) -> str:
    return item.status(today)


@register.inclusion_tag("workspace/saved_views.html#bar", takes_context=True)
def saved_views_bar(context) -> dict:
    """The user's saved views of the accounts table and those shared with everyone (one
    query, at most `SAVED_VIEWS_SHOWN`)."""
    request = context["request"]
    return {
        "views": saved_views_for(request.user),
        "base_url": context.get("base_url", ""),
        "querystring": context.get("querystring", ""),
        "user": request.user,
        "request": request,
        "csrf_token": context.get("csrf_token"),
    }
