from django.contrib.auth import views as auth_views
from django.urls import path

from pursuit.web import compliance_views, plan_views, views, workspace_views

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="registration/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only (Django 5)
    path("", workspace_views.home, name="home"),
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
    path("leads/<int:lead_id>/consent/", compliance_views.lead_consent, name="lead-consent"),
    path("leads/<int:lead_id>/do-not-contact/", compliance_views.lead_do_not_contact, name="lead-dnc"),
    path(
        "leads/<int:lead_id>/stop/<int:decision_id>/confirm/",
        compliance_views.lead_stop_confirm,
        name="lead-stop-confirm",
    ),
    path("compliance/", compliance_views.compliance, name="compliance"),
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
    path("today/", workspace_views.today, name="today"),
    path("today/log/<int:lead_id>/", workspace_views.today_log, name="today-log"),
    path("today/reply/<int:lead_id>/", workspace_views.reply_answered, name="today-reply"),
    path("leads/<int:lead_id>/appointment/", workspace_views.lead_appointment, name="lead-appointment"),
    path(
        "appointments/<int:appointment_id>/<str:action>/",
        workspace_views.appointment_change,
        name="appointment-change",
    ),
    path(
        "appointments/<int:appointment_id>.ics", workspace_views.appointment_invite, name="appointment-invite"
    ),
    path("calendar/", workspace_views.calendar_page, name="calendar"),
    path("team/", workspace_views.team, name="team"),
    path("team/reassign/", workspace_views.team_reassign, name="team-reassign"),
    path("outbox/", views.outbox, name="outbox"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
]
