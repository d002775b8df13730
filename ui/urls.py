from django.urls import path

from ui import bulk_views, views

app_name = "ui"

urlpatterns = [
    path("", views.home, name="home"),
    path("tam/<int:user_id>/", views.tam_dashboard, name="tam_dashboard"),
    path("accounts.csv", views.accounts_csv, name="accounts_csv"),
    path("accounts/bulk/", bulk_views.accounts_bulk, name="accounts_bulk"),
    path("account/<str:salesforce_id>/", views.account_detail, name="account"),
    path(
        "account/<str:salesforce_id>/activities/",
        views.account_activity_log,
        name="activity_log",
    ),
    path("team/", views.team, name="team"),
]
