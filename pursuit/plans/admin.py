"""Admin for follow-up plans: plans with their versions, a version's steps, message templates,
transitions and incentives; and, read-only, the leads' enrolments and steps.

A version's steps are frozen once a lead is enrolled in it (the lead's steps point at them):
they are edited by saving a new version ("Copy as a new version", or the plan editor in the
app), and leads already enrolled keep the version they have.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from pursuit.leads.models import Lead
from pursuit.lib import clock
from pursuit.org.admin import (
    PursuitAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    StaffFilter,
    admin_link,
    short_time,
    when,
)
from pursuit.outreach.admin import merge_fields_help
from pursuit.outreach.services import TemplateProblem, plan_merge_fields, template_render
from pursuit.plans.files import CONDITIONS, EVENTS, SAMPLE_FIELDS
from pursuit.plans.models import (
    Enrolment,
    Incentive,
    MessageTemplate,
    Plan,
    PlanStep,
    PlanVersion,
    Step,
    Transition,
)
from pursuit.plans.services import PlanError, plan_version_save
from pursuit.web.forms import SKIP_IF, step_problems, template_problem

PLAN_MERGE_HELP = (
    merge_fields_help()
    + " Plan templates also have {{ trade }} (the trade-in, e.g. 2017 Honda Civic LX) and, "
    "in a re-engagement, {{ incentive.title }}, {{ incentive.description }} and {{ incentive.valid_until }}."
)

STEP_FIELDS = "name amount unit counted_from window channel action template role script voicemail skip_if repeat".split()


def _in_use(version: PlanVersion | None) -> bool:
    """Whether a lead was ever enrolled in `version` (then its steps must not change)."""
    if version is None or version.pk is None:
        return False
    if not hasattr(version, "_in_use"):
        version._in_use = Enrolment.objects.filter(version=version).exists()
    return version._in_use


# --------------------------------------------------------------------------- templates


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["rooftop", "key", "name", "channel", "purpose", "subject", "body"]
        widgets = {
            "body": forms.Textarea(attrs={"rows": 16, "cols": 90, "style": "font-family: monospace"}),
            "subject": forms.TextInput(attrs={"size": 90}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("subject", "body"):
            self.fields[name].help_text = PLAN_MERGE_HELP

    def _checked(self, name: str) -> str:
        # Checked with sample fields (full, and with the blanks real leads have) when saved, so a
        # typo is caught now, not when the worker sends to a customer.
        source = self.cleaned_data[name]
        problem = template_problem(source)
        if problem:
            raise ValidationError(f"This template does not work: {problem}")
        return source

    def clean_subject(self):
        return self._checked("subject")

    def clean_body(self):
        return self._checked("body")

    def clean(self):
        data = super().clean()
        channel, subject = data.get("channel"), (data.get("subject") or "").strip()
        if channel == "email" and not subject and "subject" not in self.errors:
            self.add_error("subject", "An email template needs a subject.")
        if channel in ("text", "call") and subject:
            self.add_error("subject", f"A {channel} template has no subject.")
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(PursuitAdmin):
    form = MessageTemplateForm
    list_display = ["name", "key", "channel", "purpose", "subject", "rooftop"]
    list_filter = ["rooftop", "channel", "purpose"]
    search_fields = ["name", "key", "subject", "body"]
    list_select_related = ["rooftop"]
    autocomplete_fields = ["rooftop"]
    readonly_fields = ["used_by", "preview"]
    fields = ["rooftop", "key", "name", "channel", "purpose", "subject", "body", "used_by", "preview"]

    @admin.display(description="Used by")
    def used_by(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "—"
        plans = sorted(
            set(
                PlanStep.objects.filter(template=obj)
                .values_list("version__plan__name", "version__plan_id")
                .distinct()
            )
        )
        if not plans:
            return "No plan step."
        links = format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            ((reverse("admin:plans_plan_change", args=[pk]), name) for name, pk in plans),
        )
        return format_html(
            "{}. A change applies to every message not yet sent, including to leads already on these plans.",
            links,
        )

    @admin.display(description="Preview")
    def preview(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "Shown once the template is saved."
        lead = (
            Lead.objects.filter(rooftop_id=obj.rooftop_id, owner__isnull=False)
            .select_related("customer", "owner", "rooftop")
            .order_by("-created_at")
            .first()
        )
        fields, who = SAMPLE_FIELDS, "a sample customer"
        if lead is not None:
            fields, who = (
                plan_merge_fields(lead, incentive=SAMPLE_FIELDS["incentive"]),
                f"{lead.customer} (lead {lead.pk})",
            )
        try:
            subject = " ".join(template_render(obj.subject, fields).split())
            body = template_render(obj.body, fields)
        except TemplateProblem as exc:
            return f"Does not render: {exc}"
        return format_html(
            '<p>For {}, with a sample incentive:</p><pre style="white-space: pre-wrap">{}{}</pre>',
            who,
            f"Subject: {subject}\n\n" if subject else "",
            body,
        )


# --------------------------------------------------------------------------- plans and versions


class PlanForm(forms.ModelForm):
    class Meta:
        model = Plan
        fields = ["rooftop", "key", "name", "description", "kind", "then", "active"]

    def clean(self):
        data = super().clean()
        then, rooftop = data.get("then"), data.get("rooftop") or getattr(self.instance, "rooftop", None)
        key = data.get("key") or self.instance.key
        if then and rooftop is not None:
            if then == key:
                self.add_error("then", "A plan cannot follow itself.")
            elif not Plan.objects.filter(rooftop=rooftop, key=then).exists():
                self.add_error("then", f"The rooftop has no plan with the key {then!r}.")
        return data


class PlanVersionInline(ReadOnlyInline, admin.TabularInline):
    model = PlanVersion
    fields = ["version_link", "saved", "created_by", "note", "steps", "leads_on_it"]
    readonly_fields = fields
    verbose_name_plural = "Versions (the highest is current)"
    ordering = ["-number"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .annotate(
                n_steps=Count("steps", distinct=True),
                n_active=Count("enrolments", filter=Q(enrolments__status="active"), distinct=True),
            )
        )

    @admin.display(description="Version")
    def version_link(self, obj) -> str:
        return admin_link(obj, f"v{obj.number}")

    @admin.display(description="Saved")
    def saved(self, obj) -> str:
        return short_time(obj.created_at)

    @admin.display(description="Steps")
    def steps(self, obj) -> int:
        return obj.n_steps

    @admin.display(description="Leads on it now")
    def leads_on_it(self, obj) -> int:
        return obj.n_active


def steps_table(version: PlanVersion | None) -> str:
    if version is None:
        return "No version yet: add one under Plan versions, or write the steps in the app (Plans)."
    rows = [
        (
            s.position,
            s.name,
            f"{s.amount} {s.get_unit_display()} {s.get_counted_from_display()}",
            s.get_window_display(),
            s.get_channel_display(),
            f"send {s.template.name}" if s.action == "send" and s.template else s.get_action_display(),
            ", ".join(s.skip_if or []) or "—",
            s.get_role_display() or "owner",
        )
        for s in version.steps.select_related("template").order_by("position")
    ]
    head = format_html_join(
        "",
        "<th>{}</th>",
        ((h,) for h in ("#", "Step", "When", "Window", "Channel", "What", "Skipped if", "For")),
    )
    body = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        rows,
    )
    return format_html(
        '<p>Version {} (<a href="{}">open</a>)</p><table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        version.number,
        reverse("admin:plans_planversion_change", args=[version.pk]),
        head,
        body,
    )


@admin.register(Plan)
class PlanAdmin(PursuitAdmin):
    form = PlanForm
    list_display = ["name", "key", "kind", "current_version", "active_leads", "active", "rooftop"]
    list_filter = ["rooftop", "kind", "active"]
    search_fields = ["name", "key", "description"]
    list_select_related = ["rooftop"]
    autocomplete_fields = ["rooftop"]
    inlines = [PlanVersionInline]
    fields = ["rooftop", "key", "name", "description", "kind", "then", "active", "current_steps"]
    readonly_fields = ["current_steps"]

    def get_readonly_fields(self, request, obj=None):
        # Transitions and other plans' `then` name the plan by its key and rooftop.
        return [*self.readonly_fields, "rooftop", "key"] if obj is not None else self.readonly_fields

    def get_queryset(self, request):
        current = PlanVersion.objects.filter(plan=OuterRef("pk")).order_by("-number").values("number")[:1]
        active = (
            Enrolment.objects.filter(version__plan=OuterRef("pk"), status="active")
            .order_by()
            .values("version__plan")
            .annotate(n=Count("pk"))
            .values("n")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(current_number=Subquery(current), n_active=Coalesce(Subquery(active), 0))
        )

    @admin.display(description="Current version", ordering="current_number")
    def current_version(self, obj) -> str:
        return f"v{obj.current_number}" if obj.current_number else "none"

    @admin.display(description="Leads on it", ordering="n_active")
    def active_leads(self, obj) -> int:
        return obj.n_active

    @admin.display(description="Current version's steps")
    def current_steps(self, obj) -> str:
        if obj is None or obj.pk is None:
            return "Saved first; then add a version with its steps."
        return steps_table(obj.current)


class PlanStepForm(forms.ModelForm):
    skip_if = forms.MultipleChoiceField(
        required=False, choices=list(SKIP_IF.items()), widget=forms.CheckboxSelectMultiple, label="Skip if"
    )

    class Meta:
        model = PlanStep
        fields = ["position", *STEP_FIELDS]
        widgets = {"script": forms.Textarea(attrs={"rows": 3, "cols": 60})}

    def clean(self):
        data = super().clean()
        if "name" not in self.fields:
            return data  # shown read-only: nothing was edited
        for name, message in step_problems(data):
            if name in self.fields:
                self.add_error(name, message)
        return data

    def clean_skip_if(self):
        return [c for c in SKIP_IF if c in self.cleaned_data["skip_if"]]


class PlanStepFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        if _in_use(self.instance):
            return  # shown read-only: nothing was edited
        plan = self.instance.plan if self.instance.plan_id else None
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        for form in kept:
            template = form.cleaned_data.get("template")
            if plan is not None and template is not None and template.rooftop_id != plan.rooftop_id:
                form.add_error("template", f"{template.name} is a template of another rooftop.")
        positions = [f.cleaned_data.get("position") for f in kept]
        if len(set(positions)) != len(positions):
            raise ValidationError("Two steps have the same position.")
        for form in sorted(kept, key=lambda f: f.cleaned_data.get("position") or 0)[:-1]:
            if form.cleaned_data.get("repeat"):
                form.add_error("repeat", "Only the last step can repeat.")


class PlanStepInline(admin.StackedInline):
    """Editable while no lead was ever enrolled in the version; then read-only. A version needs
    a step: it is the plan's current version as soon as it is saved."""

    model = PlanStep
    form = PlanStepForm
    formset = PlanStepFormSet
    extra = 0
    min_num = 1
    validate_min = True
    ordering = ["position"]
    fieldsets = [
        (None, {"fields": [("position", "name"), ("amount", "unit", "counted_from"), "window"]}),
        (
            None,
            {
                "fields": [
                    ("channel", "action", "template"),
                    "role",
                    "script",
                    ("voicemail", "repeat"),
                    "skip_if",
                ]
            },
        ),
    ]

    def has_add_permission(self, request, obj=None) -> bool:
        return not _in_use(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return not _in_use(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return not _in_use(obj) and super().has_delete_permission(request, obj)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        template = formset.form.base_fields.get("template")
        if template is not None:
            templates = MessageTemplate.objects.select_related("rooftop").order_by("rooftop__name", "name")
            if obj is not None and obj.plan_id:
                templates = templates.filter(rooftop_id=obj.plan.rooftop_id)
            template.queryset = templates
            template.label_from_instance = lambda t: f"{t.name} ({t.get_channel_display()}, {t.rooftop.name})"
        return formset


class PlanVersionForm(forms.ModelForm):
    class Meta:
        model = PlanVersion
        fields = ["plan", "note"]


@admin.register(PlanVersion)
class PlanVersionAdmin(PursuitAdmin):
    form = PlanVersionForm
    list_display = [
        "__str__",
        "plan",
        "number",
        when("created_at", "Saved"),
        "created_by",
        "note",
        "steps",
        "leads",
    ]
    list_filter = ["plan__rooftop", "plan"]
    search_fields = ["plan__name", "plan__key", "note"]
    list_select_related = ["plan", "created_by"]
    ordering = ["plan__name", "-number"]
    inlines = [PlanStepInline]
    actions = ["copy_as_new_version"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["plan", "note"]
        return ["plan", "number", "note", "created_at", "created_by", "in_use"]

    def get_readonly_fields(self, request, obj=None):
        return ["plan", "number", "created_at", "created_by", "in_use"] if obj is not None else []

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_steps=Count("steps", distinct=True),
                n_enrolments=Count("enrolments", distinct=True),
                n_active=Count("enrolments", filter=Q(enrolments__status="active"), distinct=True),
            )
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return not _in_use(obj) and super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            # "last + 1", with the plan's versions locked like plan_version_save does.
            last = PlanVersion.objects.select_for_update().filter(plan=obj.plan).order_by("-number").first()
            obj.number = (last.number + 1) if last else 1
            obj.created_at, obj.created_by = clock.now(), request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Steps", ordering="n_steps")
    def steps(self, obj) -> int:
        return obj.n_steps

    @admin.display(description="Leads on it now (ever)", ordering="n_active")
    def leads(self, obj) -> str:
        return f"{obj.n_active} ({obj.n_enrolments})"

    @admin.display(description="Steps editable?")
    def in_use(self, obj) -> str:
        if _in_use(obj):
            return (
                "No: leads were enrolled in this version and keep its steps. To change the plan, use "
                "“Copy as a new version” in the list of versions, or edit the plan in the app."
            )
        return "Yes: no lead was ever enrolled in this version."

    @admin.action(description="Copy as a new version (its steps can then be edited)", permissions=["change"])
    def copy_as_new_version(self, request, queryset):
        now = clock.now()
        for version in queryset.select_related("plan"):
            steps = [{f: getattr(s, f) for f in STEP_FIELDS} for s in version.steps.order_by("position")]
            try:
                new = plan_version_save(
                    plan=version.plan,
                    steps=steps,
                    by=request.user,
                    now=now,
                    note=f"copied from v{version.number}",
                )
            except PlanError as exc:
                self.message_user(request, f"{version} was not copied: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    format_html(
                        "{} copied as {}: leads enrolled from now on get it.",
                        version,
                        admin_link(new, str(new)),
                    ),
                    messages.SUCCESS,
                )


# --------------------------------------------------------------------------- transitions, incentives


class TransitionForm(forms.ModelForm):
    event = forms.ChoiceField(choices=[(e, e) for e in EVENTS])

    class Meta:
        model = Transition
        fields = ["rooftop", "event", "condition", "plan"]

    def clean(self):
        data = super().clean()
        event, condition = data.get("event"), data.get("condition") or ""
        allowed = CONDITIONS.get(event, ("",))
        if event and condition not in allowed:
            self.add_error(
                "condition",
                "This event takes no condition."
                if allowed == ("",)
                else f"One of: {', '.join(c for c in allowed if c)} (or empty for every case).",
            )
        plan, rooftop = data.get("plan"), data.get("rooftop")
        if plan is not None and rooftop is not None and plan.rooftop_id != rooftop.pk:
            self.add_error("plan", f"{plan} is a plan of another rooftop.")
        elif plan is not None and not PlanStep.objects.filter(version=plan.current).exists():
            # Enrolling in it would fail: the event (an arrival, a logged call) would be refused.
            self.add_error("plan", f"{plan} has no steps yet: give it a version with steps first.")
        return data


@admin.register(Transition)
class TransitionAdmin(PursuitAdmin):
    form = TransitionForm
    list_display = ["event", "condition", "plan", "rooftop"]
    list_filter = ["rooftop", "event"]
    search_fields = ["event", "condition", "plan__name"]
    list_select_related = ["plan", "rooftop"]
    autocomplete_fields = ["rooftop"]
    ordering = ["rooftop", "event", "condition"]


@admin.register(Incentive)
class IncentiveAdmin(PursuitAdmin):
    list_display = ["title", "kind", "make", "model", "years", "condition", "stock", "valid_until", "rooftop"]
    list_filter = ["rooftop", "kind", "condition"]
    search_fields = ["title", "make", "model", "stock"]
    list_select_related = ["rooftop"]
    autocomplete_fields = ["rooftop"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "created_by"]
    fields = [
        "rooftop",
        "kind",
        "title",
        "description",
        ("make", "model"),
        ("year_from", "year_to"),
        "condition",
        "stock",
        ("valid_from", "valid_until"),
        "created_at",
        "created_by",
    ]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_at, obj.created_by = clock.now(), request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Years")
    def years(self, obj) -> str:
        if not (obj.year_from or obj.year_to):
            return "—"
        return f"{obj.year_from or '…'}–{obj.year_to or '…'}"


# --------------------------------------------------------------------------- what leads are on (read-only)


class EnrolmentStepInline(ReadOnlyInline, admin.TabularInline):
    model = Step
    fields = ["title", "due", "status", "action", "channel", "assignee", "attempts", "outcome"]
    readonly_fields = fields
    verbose_name_plural = "Steps"
    ordering = ["due_at", "id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("plan_step", "assignee")

    @admin.display(description="Due")
    def due(self, obj) -> str:
        return short_time(obj.due_at)


@admin.register(Enrolment)
class EnrolmentAdmin(ReadOnlyAdmin):
    list_display = [
        "lead_link",
        "plan",
        "status",
        "primary",
        when("started_at", "Started"),
        when("ended_at", "Ended"),
        "reason",
    ]
    list_filter = ["status", "primary", "version__plan__rooftop", "version__plan"]
    search_fields = ["=lead__id", "lead__customer__first_name", "lead__customer__last_name", "reason"]
    list_select_related = ["lead__customer", "version__plan"]
    date_hierarchy = "started_at"
    ordering = ["-started_at", "-id"]
    fields = [
        "lead_link",
        "version_link",
        "primary",
        "status",
        "started_at",
        "ended_at",
        "reason",
        "incentive",
    ]
    readonly_fields = fields
    inlines = [EnrolmentStepInline]

    @admin.display(description="Lead", ordering="lead")
    def lead_link(self, obj) -> str:
        return admin_link(obj.lead)

    @admin.display(description="Plan", ordering="version__plan__name")
    def plan(self, obj) -> str:
        return f"{obj.version.plan.name} v{obj.version.number}"

    @admin.display(description="Version")
    def version_link(self, obj) -> str:
        return admin_link(obj.version)


@admin.register(Step)
class StepAdmin(ReadOnlyAdmin):
    list_display = [
        "title",
        "lead_link",
        when("due_at", "Due"),
        "status",
        "action",
        "channel",
        "assignee",
        "attempts",
        "outcome",
    ]
    list_filter = ["status", "action", "channel", "lead__rooftop", ("assignee", StaffFilter)]
    search_fields = [
        "=lead__id",
        "name",
        "plan_step__name",
        "lead__customer__last_name",
        "outcome",
        "last_error",
    ]
    list_select_related = ["lead__customer", "plan_step", "assignee"]
    date_hierarchy = "due_at"
    ordering = ["-due_at", "-id"]
    fields = [
        "lead_link",
        "enrolment_link",
        "plan_step",
        "name",
        "script",
        "priority",
        "occurrence",
        "action",
        "channel",
        "due_at",
        "status",
        "assignee",
        "claimed_until",
        "claimed_by",
        "attempts",
        "last_error",
        "done_at",
        "outcome",
    ]
    readonly_fields = fields

    @admin.display(description="Lead", ordering="lead")
    def lead_link(self, obj) -> str:
        return admin_link(obj.lead)

    @admin.display(description="Enrolment")
    def enrolment_link(self, obj) -> str:
        return admin_link(obj.enrolment)
