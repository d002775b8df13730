from django.http import HttpRequest

from portfolio.roles import role_of


def roles(request: HttpRequest) -> dict[str, str | None]:
    """The signed-in user's role (tam, manager, admin) for navigation."""
    user = getattr(request, "user", None)
    return {"user_role": role_of(user) if user is not None and user.is_authenticated else None}
