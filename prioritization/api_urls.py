from django.urls import path

from prioritization import api

urlpatterns = [
    path("priority/evaluate", api.evaluate_priority, name="api-priority-evaluate"),
    path(
        "accounts/<str:salesforce_id>/priority",
        api.account_priority,
        name="api-account-priority",
    ),
]
