"""Template helpers of the workspace pages, and the saved-views panel of the accounts table."""

from __future__ import annotations

import datetime as dt

from django import template

register = template.Library()


@register.filter
def get_item(mapping: dict, key: str):
    return mapping.get(key) if mapping else None


@register.filter
def inbox_status(item, today: dt.date) -> str:
    return item.status(today)
