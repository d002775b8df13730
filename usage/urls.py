from django.urls import path

from usage import views

app_name = "usage"

urlpatterns = [
    path("account/<str:salesforce_id>/", views.account_panel, name="account"),
]
