from django.urls import path

from usage import api

urlpatterns = [
    path("usage", api.usage_post, name="api-usage"),
]
