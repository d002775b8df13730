from django.urls import path

from prioritization import views

app_name = "prioritization"

urlpatterns = [
    path("", views.index, name="index"),
    path("account/<str:salesforce_id>/", views.account_priority, name="account"),
    path(
        "account/<str:salesforce_id>/exceptions/",
        views.exception_request,
        name="exception_request",
    ),
    # The account's primary key before issue 17.8: permanent redirects, in the user's scope.
    path("accounts/<int:account_id>/", views.account_priority_by_pk, name="account_by_pk"),
    path(
        "accounts/<int:account_id>/exceptions/",
        views.exception_request_by_pk,
        name="exception_request_by_pk",
    ),
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
