from django.http import HttpRequest

from portfolio.roles import is_sales_manager, role_of


def roles(request: HttpRequest) -> dict[str, str | bool | None]:
    """The signed-in user's role (tam, manager, admin) for navigation, and whether they
    decide EMEA exceptions as Sales Management (the same cached group names: no query)."""
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    return {
        "user_role": role_of(user) if signed_in else None,
        "user_is_sales_manager": is_sales_manager(user) if signed_in else False,
    }
