from django.contrib.auth import views as auth_views
from django.urls import path

from pursuit.web import views

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
    path("outbox/", views.outbox, name="outbox"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
]
