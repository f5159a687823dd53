"""Forms: they check the shape of what a person typed; the services decide what it means."""

from __future__ import annotations

from django import forms
from django.utils.text import slugify

from pursuit.leads.models import CustomerPhone, Lead
from pursuit.leads.selectors import STATUS_FILTERS
from pursuit.leads.services import ATTEMPT_CHANNELS, ATTEMPT_OUTCOMES
from pursuit.org.models import Rooftop, User
from pursuit.outreach.services import TemplateProblem, template_render
from pursuit.plans.files import SAMPLE_BLANKS, SAMPLE_FIELDS, SEND_CHANNELS, SKIP_CONDITIONS
from pursuit.plans.models import CHANNELS, Incentive, MessageTemplate, Plan, PlanStep
from pursuit.plans.services import OBJECTIONS

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


# --------------------------------------------------------------------------- plans (managers)

# The conditions `plans.services.step_skip_reason` understands (files.SKIP_CONDITIONS), in words.
_SKIP_LABELS = {
    "replied": "the customer replied since the plan started",
    "talked": "someone talked with the customer since the plan started",
    "appointment-set": "an appointment is set",
    "no-email": "no email address",
    "no-phone": "no phone number",
    "no-mobile": "no mobile number",
    "auto-answered": "the automatic first answer went out (or is on its way)",
}
SKIP_IF = {condition: _SKIP_LABELS.get(condition, condition) for condition in SKIP_CONDITIONS}


class PlanForm(forms.Form):
    """A plan's own fields; its steps are a `StepFormSet`. `key` is asked only for a new plan."""

    name = forms.CharField(max_length=200)
    key = forms.SlugField(
        max_length=80,
        required=False,
        help_text="Short name used by transitions and plan files; made from the name when empty.",
    )
    kind = forms.ChoiceField(choices=Plan.Kind.choices, initial=Plan.Kind.PRIMARY)
    then = forms.ChoiceField(required=False, label="When the last step is done")
    active = forms.BooleanField(required=False, initial=True, help_text="Inactive plans take no new leads")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    note = forms.CharField(
        required=False, max_length=300, label="What changed", help_text="Kept with the new version"
    )

    def __init__(self, *args, rooftop: Rooftop, plan: Plan | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.rooftop, self.plan = rooftop, plan
        others = Plan.objects.filter(rooftop=rooftop).order_by("name")
        if plan is not None:
            others = others.exclude(pk=plan.pk)
            del self.fields["key"]
        self.fields["then"].choices = [
            ("", "The rooftop's next plan (the plan-finished rule), unless the last step repeats"),
            *((p.key, f"Go on to {p.name}") for p in others),
        ]

    def clean(self):
        data = super().clean()
        if self.plan is None and data.get("name"):
            key = data.get("key") or slugify(data["name"])[:80]
            if not key:
                self.add_error("key", "Give the plan a key (letters, digits and dashes).")
            elif Plan.objects.filter(rooftop=self.rooftop, key=key).exists():
                self.add_error("key", f"The rooftop already has a plan with the key {key!r}.")
            data["key"] = key
        return data


class StepForm(forms.Form):
    """One step of a plan, checked with the rules plan files follow (pursuit.plans.files)."""

    name = forms.CharField(max_length=200)
    amount = forms.IntegerField(min_value=0, max_value=100_000, initial=0, label="After")
    unit = forms.ChoiceField(choices=PlanStep.Unit.choices, initial=PlanStep.Unit.MINUTES, label="Unit")
    counted_from = forms.ChoiceField(
        choices=PlanStep.From.choices, initial=PlanStep.From.PREVIOUS, label="Counted"
    )
    window = forms.ChoiceField(choices=PlanStep.Window.choices, initial=PlanStep.Window.BUSINESS_HOURS)
    channel = forms.ChoiceField(choices=CHANNELS, initial="call")
    action = forms.ChoiceField(choices=PlanStep.Action.choices, initial=PlanStep.Action.TASK)
    template = forms.ModelChoiceField(queryset=MessageTemplate.objects.none(), required=False)
    role = forms.ChoiceField(choices=PlanStep._meta.get_field("role").choices, required=False, label="For")
    script = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What to say or do; merge fields such as {{ customer.first_name }} work.",
    )
    voicemail = forms.BooleanField(required=False, label="Leave a voicemail if nobody answers")
    skip_if = forms.MultipleChoiceField(
        required=False, choices=list(SKIP_IF.items()), widget=forms.CheckboxSelectMultiple, label="Skip if"
    )
    repeat = forms.BooleanField(required=False, label="Repeat at this interval while the lead is open")

    def __init__(self, *args, templates=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].queryset = (
            templates if templates is not None else MessageTemplate.objects.none()
        )
        self.fields["template"].label_from_instance = lambda t: f"{t.name} ({t.get_channel_display()})"

    def clean(self):
        data = super().clean()
        for name, message in step_problems(data):
            self.add_error(name, message)
        return data

    def step_fields(self) -> dict:
        """The PlanStep field values, as `plan_version_save` takes them."""
        d = self.cleaned_data
        return {
            "name": d["name"].strip(),
            "amount": d["amount"],
            "unit": d["unit"],
            "counted_from": d["counted_from"],
            "window": d["window"],
            "channel": d["channel"],
            "action": d["action"],
            "template": d["template"],
            "role": d["role"] or "",
            "script": d["script"],
            "voicemail": d["voicemail"],
            "skip_if": [c for c in SKIP_IF if c in d["skip_if"]],
            "repeat": d["repeat"],
        }


def step_problems(data: dict) -> list[tuple[str, str]]:
    """(field, message) for each rule a plan step breaks: the rules plan files follow
    (pursuit.plans.files), for the plan editor and the admin."""
    problems = []
    channel, action, template = data.get("channel"), data.get("action"), data.get("template")
    if action == PlanStep.Action.SEND:
        if channel and channel not in SEND_CHANNELS:
            problems.append(("channel", "An automatic send goes by email or text."))
        if template is None:
            problems.append(("template", "An automatic send needs a template."))
        elif channel and template.channel != channel:
            problems.append(("template", f"{template.name} is a {template.get_channel_display()} template."))
    if data.get("voicemail") and channel and channel != "call":
        problems.append(("voicemail", "A voicemail is only for calls."))
    if data.get("repeat"):
        if not data.get("amount"):
            problems.append(("amount", "A repeating step needs an interval, e.g. 30 days."))
        if data.get("counted_from") != PlanStep.From.PREVIOUS:
            problems.append(("counted_from", "A repeating step is counted from the previous step."))
    problem = template_problem(data.get("script") or "")
    if problem:
        problems.append(("script", f"This script does not work: {problem}"))
    return problems


class BaseStepFormSet(forms.BaseFormSet):
    ordering_widget = forms.NumberInput(attrs={"min": 1, "class": "position"})

    def __init__(self, *args, templates=None, **kwargs):
        self.templates = templates
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {"templates": self.templates}

    def add_fields(self, form, index):
        super().add_fields(form, index)
        form.fields["ORDER"].label = "Position"
        form.fields["DELETE"].label = "Remove"

    def clean(self):
        if any(self.errors):
            return
        steps = [f for f in self.ordered_forms if f.cleaned_data]
        if not steps:
            raise forms.ValidationError(
                "A plan needs at least one step: a lead on it would have no next step."
            )
        for form in steps[:-1]:
            if form.cleaned_data.get("repeat"):
                form.add_error("repeat", "Only the last step can repeat.")

    def steps(self) -> list[dict]:
        """The kept steps in their new order."""
        return [f.step_fields() for f in self.ordered_forms if f.cleaned_data]


StepFormSet = forms.formset_factory(
    StepForm, formset=BaseStepFormSet, extra=0, can_order=True, can_delete=True, max_num=60, validate_max=True
)


def template_problem(source: str) -> str:
    """Why `source` does not render with sample merge fields (full, then with the blanks real
    leads have), or "": the check plan files get on import."""
    for sample in (SAMPLE_FIELDS, SAMPLE_BLANKS):
        try:
            template_render(source, sample, strict=True)
        except TemplateProblem as exc:
            return str(exc)
    return ""


class PlanImportForm(forms.Form):
    file = forms.FileField(label="Plan file (YAML)")

    MAX_BYTES = 2_000_000

    def clean_file(self) -> str:
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(f"The file is too large ({upload.size:,} bytes; at most 2 MB).")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(
                "The file is not UTF-8 text: save it as UTF-8 and try again."
            ) from None


class IncentiveForm(forms.ModelForm):
    class Meta:
        model = Incentive
        fields = [
            "title",
            "kind",
            "description",
            "make",
            "model",
            "year_from",
            "year_to",
            "condition",
            "stock",
            "valid_from",
            "valid_until",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "valid_from": forms.DateInput(attrs={"type": "date"}),
            "valid_until": forms.DateInput(attrs={"type": "date"}),
        }
        labels = {"condition": "New / used", "year_from": "Years from", "year_to": "to"}

    def clean(self):
        data = super().clean()
        if data.get("kind") == Incentive.Kind.PRICE_DROP and not (data.get("stock") or "").strip():
            self.add_error("stock", "A price drop is on one unit: give its stock number.")
        if not any((data.get(f) or "").strip() for f in ("make", "model", "stock")):
            self.add_error("make", "Say which vehicles it is for: a make, a model or a stock number.")
        if data.get("year_from") and data.get("year_to") and data["year_from"] > data["year_to"]:
            self.add_error("year_to", "The last year comes after the first.")
        if data.get("valid_from") and data.get("valid_until") and data["valid_from"] > data["valid_until"]:
            self.add_error("valid_until", "The end comes after the start.")
        return data


class CallbackForm(forms.Form):
    point = forms.CharField(max_length=2000, label="What you forgot to say")


class CallbackDoneForm(forms.Form):
    note = forms.CharField(required=False, max_length=200)


class VisitForm(forms.Form):
    objection = forms.ChoiceField(choices=list(OBJECTIONS.items()), label="Why they did not buy")
    note = forms.CharField(required=False, max_length=2000)


class MovePlanForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.none(), empty_label=None, label="Move to plan")

    def __init__(self, *args, rooftop: Rooftop, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.filter(rooftop=rooftop, active=True).order_by("name")


# --------------------------------------------------------------------------- compliance


class ConsentForm(forms.Form):
    """Consent the customer gave a member of staff (on the phone, in the showroom, in writing)."""

    channel = forms.ChoiceField(choices=[("call", "Calls"), ("text", "Texts"), ("email", "Emails")])
    purpose = forms.ChoiceField(
        choices=[("marketing", "Sales follow-up"), ("transactional", "Only what they asked for")],
        initial="marketing",
    )
    written = forms.BooleanField(
        required=False,
        label="In writing (signed or ticked)",
        help_text="Only with a signed form, a ticked box or a written message on file: written "
        "consent allows automatic sales texts.",
    )
    evidence = forms.CharField(
        max_length=2000,
        label="How and where they said it",
        error_messages={"required": "Say how the customer gave consent (the evidence is kept with it)."},
    )

    def clean_evidence(self) -> str:
        text = " ".join(self.cleaned_data["evidence"].split())
        if not text:
            raise forms.ValidationError("Say how the customer gave consent (the evidence is kept with it).")
        return text


class DoNotContactForm(forms.Form):
    confirm = forms.BooleanField(
        label="Yes: never contact this customer again, on any channel, from any rooftop of the group",
        error_messages={"required": "Tick the box to confirm: this cannot be undone from the lead page."},
    )
    note = forms.CharField(required=False, max_length=2000, label="Note (the request in their words)")


class StopConfirmForm(forms.Form):
    note = forms.CharField(required=False, max_length=2000)


def _count_field(label: str, low: int, high: int, help_text: str, why_low: str, why_high: str):
    return forms.IntegerField(
        label=label,
        min_value=low,
        max_value=high,
        help_text=help_text,
        error_messages={
            "min_value": why_low,
            "max_value": why_high,
            "required": "Enter a number.",
            "invalid": "Enter a whole number.",
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


class RooftopCapsForm(forms.Form):
    """The rooftop's frequency caps and compliance flags (bounds: compliance.services.ROOFTOP_CAPS)."""

    cap_calls_texts_24h = _count_field(
        "Sales calls and texts per customer in any 24 hours",
        1,
        3,
        "1 to 3. Florida, Oklahoma and Maryland allow at most 3 in any 24 hours, and Pursuit applies "
        "that everywhere: it can be made stricter here, never looser.",
        "At least 1: to stop calling a customer, mark them “do not contact” on their lead.",
        "At most 3: the strictest state rule (Florida, Oklahoma, Maryland) allows no more than 3 sales "
        "calls and texts in 24 hours.",
    )
    cap_touches_day = _count_field(
        "Sales touches per customer per day (all channels)",
        1,
        20,
        "1 to 20, counted in the customer's day.",
        "At least 1: a cap of 0 would stop all follow-up.",
        "At most 20 touches a day.",
    )
    cap_touches_week = _count_field(
        "Sales touches per customer in any 7 days (all channels)",
        1,
        100,
        "1 to 100; not lower than the daily cap.",
        "At least 1: a cap of 0 would stop all follow-up.",
        "At most 100 touches a week.",
    )
    texas_registered = forms.BooleanField(
        required=False,
        label="Registered (or exempt) as a telephone seller in Texas",
        help_text="Tick only with the Texas Secretary of State registration or an exemption on file: it "
        "allows sales texts to Texas customers.",
    )
    opt_out_everywhere = forms.BooleanField(
        required=False,
        label="A stop on one channel stops every channel (recommended)",
        help_text="When off, a customer who texts STOP still gets calls and emails.",
    )

    def clean(self):
        data = super().clean()
        day, week = data.get("cap_touches_day"), data.get("cap_touches_week")
        if day is not None and week is not None and week < day:
            self.add_error("cap_touches_week", "The weekly cap cannot be lower than the daily cap.")
        return data


class DecisionFilterForm(forms.Form):
    rule = forms.ChoiceField(required=False)
    verdict = forms.ChoiceField(
        required=False,
        choices=[("", "Any verdict"), ("defer", "Deferred"), ("deny", "Denied"), ("flag", "Flagged")],
    )

    def __init__(self, *args, rules: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rule"].choices = [("", "Any rule")] + [(r, r) for r in rules]

    def values(self) -> tuple[str, str]:
        """(rule, verdict): a value that is not offered is ignored, never an error."""
        self.is_valid()
        return self.cleaned_data.get("rule") or "", self.cleaned_data.get("verdict") or ""
