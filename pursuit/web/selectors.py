"""Reads for the pages that are not about one lead: the outbox and notifications.

Like every read, each takes the acting user and returns only what that user may see.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from pursuit.org.models import User
from pursuit.outreach.models import OutboundEmail, OutboxEmail
from pursuit.work.models import Notification


def sent_for_user(user: User) -> QuerySet[OutboundEmail]:
    """The emails Pursuit sent (or tried to) for the leads of the user's rooftop, newest first."""
    qs = OutboundEmail.objects.select_related("lead__customer").order_by("-sent_at", "-id")
    if user.is_superuser:
        return qs
    if user.rooftop_id is None:
        return qs.none()
    return qs.filter(lead__rooftop_id=user.rooftop_id)


def outbox_for_user(user: User) -> QuerySet[OutboxEmail]:
    """What the "outbox" email backend kept instead of delivering: managers and admins only.

    A kept message belongs to a rooftop through its Message-ID: the Message-ID of an
    OutboundEmail of the rooftop's leads. Superusers see everything, including mail Django
    itself sent.
    """
    qs = OutboxEmail.objects.order_by("-created_at", "-id")
    if user.is_superuser:
        return qs
    if not user.is_manager or user.rooftop_id is None:
        return qs.none()
    mine = OutboundEmail.objects.filter(lead__rooftop_id=user.rooftop_id, message_id=OuterRef("message_id"))
    return qs.exclude(message_id="").filter(Exists(mine))


def notifications_for_user(user: User) -> QuerySet[Notification]:
    return (
        Notification.objects.filter(user=user).select_related("lead__customer").order_by("-created_at", "-id")
    )
