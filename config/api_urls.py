"""The JSON API (/api/v1/). Each app adds its endpoints to its own `api_urls.py`."""

from django.urls import include, path

urlpatterns = [
    path("", include("prioritization.api_urls")),
    path("", include("triage.api_urls")),
    path("", include("usage.api_urls")),
]
