from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from portfolio import oidc
from portfolio.sync_views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", oidc.LoginView.as_view(), name="login"),
    # Company sign-in (OIDC): 404s unless OIDC_ISSUER is set (portfolio/oidc.py).
    path(
        "accounts/oidc/authenticate/",
        login_not_required(oidc.OIDCAuthenticateView.as_view()),
        name="oidc_authentication_init",
    ),
    path(
        "accounts/oidc/callback/",
        login_not_required(oidc.OIDCCallbackView.as_view()),
        name="oidc_authentication_callback",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("integrations/sync-runs/writeback/", include("portfolio.writeback_views")),
    path("priority/", include("prioritization.urls")),
    path("triage/", include("triage.urls")),
    path("engagement/", include("engagement.urls")),
    path("usage/", include("usage.urls")),
    path("notifications/", include("notifications.urls")),
    path("", include("workspace.urls")),
    path("api/v1/", include("config.api_urls")),
    path("", include("portfolio.urls")),
    path("", include("ui.urls")),
]
