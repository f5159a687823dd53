"""Forms of the working day: logging an outcome from My day, appointments, bulk reassignment."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django import forms

from pursuit.org.models import User

OUTCOMES = [
    ("no-answer", "No answer"),
    ("voicemail", "Left voicemail"),
    ("talked", "Talked"),
    ("bad-number", "Bad number"),
    ("stop", "Not interested / stop"),
    ("sold", "Sold"),
    ("bought-elsewhere", "Bought elsewhere"),
]


class OutcomeForm(forms.Form):
    outcome = forms.ChoiceField(choices=OUTCOMES)
    channel = forms.ChoiceField(
        choices=[("call", "Call"), ("text", "Text"), ("email", "Email")], initial="call"
    )
    note = forms.CharField(required=False, max_length=2000)

    def clean(self):
        data = super().clean()
        if data.get("outcome") == "bought-elsewhere" and not (data.get("note") or "").strip():
            self.add_error("note", "Say where or why they bought elsewhere.")
        return data


class AppointmentForm(forms.Form):
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time", "step": 900}))
    minutes = forms.IntegerField(min_value=5, max_value=480, initial=60, label="Length (minutes)")
    with_user = forms.ModelChoiceField(queryset=User.objects.none(), required=False, label="With")
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, rooftop=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rooftop = rooftop
        if rooftop is not None:
            self.fields["with_user"].queryset = User.objects.filter(rooftop=rooftop, is_active=True).order_by(
                "first_name"
            )

    def starts_at(self) -> dt.datetime:
        """The chosen local wall time in the rooftop's zone (the form's times are the store's)."""
        zone = ZoneInfo(self.rooftop.time_zone)
        return dt.datetime.combine(self.cleaned_data["day"], self.cleaned_data["time"], tzinfo=zone)


class MoveForm(forms.Form):
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time", "step": 900}))


class BulkReassignForm(forms.Form):
    owner = forms.ModelChoiceField(queryset=User.objects.none(), label="Give the chosen leads to")

    def __init__(self, *args, rooftop=None, **kwargs):
        super().__init__(*args, **kwargs)
        if rooftop is not None:
            self.fields["owner"].queryset = User.objects.filter(rooftop=rooftop, is_active=True).order_by(
                "first_name"
            )
