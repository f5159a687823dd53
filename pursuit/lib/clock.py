"""The one clock. Every rule about time takes `now` as an argument; callers at the edge
(views, the worker loop, commands) ask this module. Tests move it with time-machine."""

import datetime as dt

from django.utils import timezone


def now() -> dt.datetime:
    return timezone.now()
