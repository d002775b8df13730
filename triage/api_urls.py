from django.urls import path

from triage import api

urlpatterns = [
    path("health/evaluate", api.health_evaluate, name="api-health-evaluate"),
]
