from django.urls import path

from workspace import views

app_name = "workspace"

urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/done", views.inbox_done, name="inbox_done"),
    path("inbox/snooze", views.inbox_snooze, name="inbox_snooze"),
    path("search/", views.search, name="search"),
    path("views/", views.saved_view_create, name="saved_view_create"),
    path("views/<int:view_id>/delete", views.saved_view_delete, name="saved_view_delete"),
]
