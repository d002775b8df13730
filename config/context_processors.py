from django.http import HttpRequest

from portfolio.roles import is_sales_manager, role_of


def roles(request: HttpRequest) -> dict[str, str | bool | None]:
    """The signed-in user's role (tam, manager, admin) for navigation, and whether they
    decide EMEA exceptions as Sales Management (the same cached group names: no query)."""
    # No user on a request that failed before AuthenticationMiddleware (a 400 page).
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_role": None, "user_is_sales_manager": False}
    return {"user_role": role_of(user), "user_is_sales_manager": is_sales_manager(user)}
