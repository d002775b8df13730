from django.urls import path

from portfolio import sync_views, token_views

app_name = "portfolio"

urlpatterns = [
    path("integrations/sync-runs/", sync_views.sync_runs, name="sync_runs"),
    path("integrations/sync-runs/salesforce/run", sync_views.sync_now, name="sync_now"),
    path("settings/api-tokens/", token_views.api_tokens, name="api_tokens"),
    path(
        "settings/api-tokens/<int:token_id>/revoke",
        token_views.api_token_revoke_view,
        name="api_token_revoke",
    ),
]
