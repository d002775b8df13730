from django.urls import path

from prioritization import views

app_name = "prioritization"

urlpatterns = [
    path("", views.index, name="index"),
    path("accounts/<int:pk>/", views.account_priority, name="account"),
    path("accounts/<int:pk>/exceptions/", views.exception_request, name="exception_request"),
    path("exceptions/pending/", views.pending, name="pending"),
    path(
        "exceptions/<int:pk>/approve/",
        views.exception_decide,
        {"decision": "approve"},
        name="exception_approve",
    ),
    path(
        "exceptions/<int:pk>/reject/",
        views.exception_decide,
        {"decision": "reject"},
        name="exception_reject",
    ),
]
