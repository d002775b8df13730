from django.urls import path

from triage import views

app_name = "triage"

urlpatterns = [
    path("", views.board, {"kind": "colours"}, name="board_colours"),
    path("regions/", views.board, {"kind": "regions"}, name="board_regions"),
    path("issues/<int:issue_id>/", views.issue_detail, name="issue"),
    path("issues/<int:issue_id>/move/", views.issue_move, name="issue_move"),
    path("issues/<int:issue_id>/review/", views.issue_review, name="issue_review"),
    path("issues/<int:issue_id>/edit/", views.issue_edit, name="issue_edit"),
    path("issues/<int:issue_id>/updates/", views.issue_update_add, name="issue_update"),
    path("issues/<int:issue_id>/team/", views.issue_team_add, name="issue_team"),
    path("account/<str:salesforce_id>/", views.account_health, name="account"),
    path("account/<str:salesforce_id>/health/", views.health_set, name="health_set"),
    path("account/<str:salesforce_id>/signals/", views.signals_update, name="signals"),
    path("account/<str:salesforce_id>/open/", views.issue_open, name="issue_open"),
    path("agenda/", views.agenda, name="agenda"),
    path("agenda/calls/", views.agenda_call, name="agenda_call"),
    path("account/<str:salesforce_id>/fix/", views.agenda_fix, name="agenda_fix"),
    # The account's primary key before issue 17.8: a permanent redirect, in the user's scope.
    path("agenda/fix/<int:account_id>/", views.agenda_fix_by_pk, name="agenda_fix_by_pk"),
]
