from django.urls import path

from integrations import views

app_name = "integrations"

urlpatterns = [
    path("sync-runs/", views.sync_runs, name="sync_runs"),
    path("sync-runs/salesforce/run", views.sync_now, name="sync_now"),
]
