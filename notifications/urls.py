from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.notification_list, name="list"),
    path("bell", views.bell, name="bell"),
    path("dropdown", views.dropdown, name="dropdown"),
    path("read-all", views.mark_all_read, name="read_all"),
    path("<int:notification_id>/read", views.mark_read, name="read"),
    path("<int:notification_id>/open", views.open_notification, name="open"),
    path("preferences/", views.preferences, name="preferences"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
]
