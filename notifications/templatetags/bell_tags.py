"""The header bell's kept unread count, for the base template (notifications.bell)."""

from django import template

from notifications import bell

register = template.Library()


@register.simple_tag(takes_context=True)
def bell_known(context: template.Context) -> dict | None:
    """The signed-in user's unread count if kept (no query), else None: the bell then
    loads it after the page."""
    user = context.get("user")
    if user is None or not user.is_authenticated:
        return None
    return bell.known(user.pk)
