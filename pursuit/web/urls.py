from django.contrib.auth import views as auth_views
from django.urls import path

from pursuit.web import plan_views, views

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="registration/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only (Django 5)
    path("", views.lead_list, name="home"),
    path("leads/", views.lead_list, name="leads"),
    path("leads/new/", views.lead_new, name="lead-new"),
    path("leads/<int:lead_id>/", views.lead_detail, name="lead"),
    path("leads/<int:lead_id>/attempt/", views.lead_attempt, name="lead-attempt"),
    path("leads/<int:lead_id>/note/", views.lead_note, name="lead-note"),
    path("leads/<int:lead_id>/status/", views.lead_status, name="lead-status"),
    path("leads/<int:lead_id>/reassign/", views.lead_reassign_view, name="lead-reassign"),
    path("leads/<int:lead_id>/callback/", plan_views.lead_callback, name="lead-callback"),
    path(
        "leads/<int:lead_id>/callback/<int:step_id>/done/",
        plan_views.lead_callback_done,
        name="lead-callback-done",
    ),
    path("leads/<int:lead_id>/visit/", plan_views.lead_visit, name="lead-visit"),
    path("leads/<int:lead_id>/plan/", plan_views.lead_plan_move, name="lead-plan-move"),
    path("plans/", plan_views.plan_list, name="plans"),
    path("plans/new/", plan_views.plan_edit, name="plan-new"),
    path("plans/export/", plan_views.plans_export, name="plans-export"),
    path("plans/import/", plan_views.plans_import, name="plans-import"),
    path("plans/<int:plan_id>/", plan_views.plan_detail, name="plan"),
    path("plans/<int:plan_id>/edit/", plan_views.plan_edit, name="plan-edit"),
    path("incentives/", plan_views.incentive_list, name="incentives"),
    path("incentives/<int:incentive_id>/", plan_views.incentive_detail, name="incentive"),
    path("incentives/<int:incentive_id>/reengage/", plan_views.incentive_reengage, name="incentive-reengage"),
    path("coverage/", plan_views.coverage, name="coverage"),
    path("coverage/<int:lead_id>/repair/", plan_views.coverage_repair, name="coverage-repair"),
    path("outbox/", views.outbox, name="outbox"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
]
