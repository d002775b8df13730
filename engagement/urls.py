from django.urls import path

from engagement import views

app_name = "engagement"

_A = "account/<str:salesforce_id>/"

urlpatterns = [
    path(_A, views.account_page, name="account"),
    path(_A + "section/<str:name>/", views.section, name="section"),
    path(_A + "engagement/", views.engagement_start, name="start"),
    path(_A + "steps/<int:step_id>/", views.step_set, name="step"),
    path(_A + "tam/", views.tam_assign, name="tam_assign"),
    path(_A + "welcome-call/", views.welcome_call, name="welcome_call"),
    path(_A + "project/", views.project_request, name="project"),
    path(_A + "project/transfer/", views.project_transfer, name="project_transfer"),
    path(_A + "cadence/", views.cadence_log, name="cadence"),
    path(_A + "objectives/", views.objective_add, name="objective_add"),
    path(_A + "objectives/<int:objective_id>/", views.objective_update, name="objective"),
    path(
        _A + "objectives/<int:objective_id>/delete/",
        views.objective_delete,
        name="objective_delete",
    ),
    path(_A + "objectives/<int:objective_id>/tasks/", views.task_add, name="task_add"),
    path(_A + "tasks/<int:task_id>/", views.task_set, name="task"),
    path(_A + "personas/", views.persona_set, name="persona"),
    path(_A + "issues/sync/", views.issues_sync, name="issues_sync"),
    path(_A + "disengage/", views.disengage, name="disengage"),
    path(_A + "email/", views.email, name="email"),
    path(_A + "brief/", views.brief_save, name="brief"),
    path(_A + "brief.<str:fmt>", views.brief_export, name="brief_export"),
]
