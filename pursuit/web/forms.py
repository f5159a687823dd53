"""Forms: they check the shape of what a person typed; the services decide what it means."""

from __future__ import annotations

from django import forms

from pursuit.leads.models import CustomerPhone, Lead
from pursuit.leads.selectors import STATUS_FILTERS
from pursuit.leads.services import ATTEMPT_CHANNELS, ATTEMPT_OUTCOMES
from pursuit.org.models import User

YEARS = {"min_value": 1900, "max_value": 2100}  # the JSON lead schema's bounds


class LeadFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    status = forms.ChoiceField(required=False, choices=list(STATUS_FILTERS.items()))
    scope = forms.ChoiceField(required=False, choices=[("mine", "Mine"), ("all", "All")])

    def values(self, *, default_scope: str) -> tuple[str, str, str]:
        """(query, status, scope), falling back to the defaults for anything missing or invalid."""
        self.is_valid()  # cleaned_data then holds the valid fields only: a bad one falls back alone
        data = self.cleaned_data
        return (data.get("q") or "", data.get("status") or "open", data.get("scope") or default_scope)


class AttemptForm(forms.Form):
    channel = forms.ChoiceField(choices=list(ATTEMPT_CHANNELS.items()))
    outcome = forms.ChoiceField(choices=list(ATTEMPT_OUTCOMES.items()))
    note = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class NoteForm(forms.Form):
    text = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 2}), label="Note")


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=Lead.Status.choices)
    reason = forms.CharField(required=False, max_length=200)


class ReassignForm(forms.Form):
    owner = forms.ModelChoiceField(queryset=User.objects.none(), empty_label=None, label="New owner")

    def __init__(self, *args, staff, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = staff
        self.fields["owner"].label_from_instance = lambda u: f"{u.display_name} ({u.get_role_display()})"


class NewLeadForm(forms.Form):
    """A phone-up or walk-in typed by a person. `lead_in()` turns it into the JSON lead schema
    (`pursuit.intake.json_parse.LeadIn`) so it goes through the same intake as every channel."""

    type = forms.ChoiceField(
        choices=[
            ("phone", "Phone-up"),
            ("walk-in", "Walk-in"),
            ("referral", "Referral"),
            ("other", "Other"),
            ("internet", "Internet"),
        ],
        initial="phone",
    )
    first_name = forms.CharField(required=False, max_length=100)
    last_name = forms.CharField(required=False, max_length=100)
    email = forms.EmailField(required=False, max_length=254)
    phone = forms.CharField(required=False, max_length=40)
    phone_type = forms.ChoiceField(
        choices=CustomerPhone.Type.choices, initial=CustomerPhone.Type.MOBILE, required=False
    )
    text_opt_in = forms.BooleanField(
        required=False,
        label="The customer gave written consent to receive text messages",
        help_text="Tick only with the customer's written consent (e.g. a signed form). "
        "Leaving it empty records nothing; it is not an opt-out.",
    )
    vehicle_year = forms.IntegerField(required=False, label="Year", **YEARS)
    vehicle_make = forms.CharField(required=False, max_length=60, label="Make")
    vehicle_model = forms.CharField(required=False, max_length=100, label="Model")
    vehicle_stock = forms.CharField(required=False, max_length=40, label="Stock #")
    vehicle_condition = forms.ChoiceField(
        required=False, label="New / used", choices=[("", "Either"), ("new", "New"), ("used", "Used")]
    )
    trade_year = forms.IntegerField(required=False, label="Year", **YEARS)
    trade_make = forms.CharField(required=False, max_length=60, label="Make")
    trade_model = forms.CharField(required=False, max_length=100, label="Model")
    trade_odometer = forms.IntegerField(
        required=False, min_value=0, max_value=2_000_000, label="Odometer (mi)"
    )
    comments = forms.CharField(required=False, max_length=10000, widget=forms.Textarea(attrs={"rows": 3}))

    def clean(self):
        data = super().clean()
        if not (data.get("first_name", "").strip() or data.get("last_name", "").strip()):
            self.add_error("first_name", "Enter the customer's first or last name.")
        return data

    def lead_in(self) -> dict:
        d = self.cleaned_data
        lead = {
            "type": d["type"],
            "first_name": d["first_name"].strip(),
            "last_name": d["last_name"].strip(),
            "comments": d["comments"].strip(),
        }
        if d["email"]:
            lead["emails"] = [d["email"]]
        if d["phone"].strip():
            lead["phones"] = [{"number": d["phone"].strip(), "type": d["phone_type"] or "other"}]
        if d["text_opt_in"]:
            # Only a ticked box is evidence. An empty box means "not asked", and must not be
            # recorded as a refusal (which would read as an opt-out).
            lead["text_opt_in"] = True
        vehicle = _vehicle(d, "vehicle", ("year", "make", "model", "stock", "condition"))
        if vehicle:
            lead["vehicles"] = [vehicle]
        trade = _vehicle(d, "trade", ("year", "make", "model", "odometer"))
        if trade:
            if "odometer" in trade:
                trade["odometer_units"] = "mi"
            lead["trade_ins"] = [trade]
        return lead


def _vehicle(data: dict, prefix: str, fields: tuple[str, ...]) -> dict:
    values = {f: data.get(f"{prefix}_{f}") for f in fields}
    values = {f: (v.strip() if isinstance(v, str) else v) for f, v in values.items()}
    return {f: v for f, v in values.items() if v not in (None, "")}
