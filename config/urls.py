from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from integrations.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("integrations/sync-runs/writeback/", include("portfolio.writeback_views")),
    path("integrations/", include("integrations.urls")),
    path("priority/", include("prioritization.urls")),
    path("triage/", include("triage.urls")),
    path("engagement/", include("engagement.urls")),
    path("api/v1/", include("config.api_urls")),
    path("", include("portfolio.urls")),
]
