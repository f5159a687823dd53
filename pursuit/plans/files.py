"""Plan files: a rooftop's templates, plans and transitions as YAML, to export, edit and import.

The format (docs/plans.md has the full reference)::

    templates:
      - {key, name, channel: email|text|call, purpose: marketing|transactional, subject, body}
    plans:
      - key: new-internet
        name: New internet lead
        kind: primary                # or transactional
        then: long-term              # optional: the plan that follows the last step
        active: true                 # optional
        description: ...
        steps:
          - {name, after: "<n> minutes|hours|days|business-days", from: enrolment|previous,
             window: any|business-hours|customer-day, channel, action: task|send, role,
             voicemail, script, skip_if: [...], repeat, template}
    transitions:
      - {event: arrived, condition: internet, plan: new-internet}

Contracts:

- `plans_load` reads untrusted text: `yaml.safe_load` only (no Python tags), every field
  checked, every problem reported with its place (`plans[new-internet] step 3 "Second call":
  ...`). If anything is wrong, `PlanFileError` lists all the problems and nothing is written.
  Otherwise one transaction upserts templates and plans by key and transitions by (event,
  condition). Plans are versioned: a plan whose steps differ from its current version's gets a
  new version (leads enrolled in the old one keep their steps); identical steps make no version.
  Loading is additive: what the file does not name is left as it is.
- `plans_dump` writes the same format; `plans_load(plans_dump(a))` on another rooftop followed
  by `plans_dump` gives the same text.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml
from django.db import transaction

from pursuit.org.models import Role, Rooftop, User
from pursuit.outreach.services import TemplateProblem, template_render
from pursuit.plans.models import CHANNELS, MessageTemplate, Plan, PlanStep, PlanVersion, Transition

DEFAULTS = Path(__file__).resolve().parent / "defaults.yaml"

# Conditions a step can be skipped on (read by plans.services.step_skip_reason when the step
# comes due).
SKIP_CONDITIONS = (
    "replied",
    "appointment-set",
    "no-mobile",
    "no-email",
    "no-phone",
    "talked",
    "auto-answered",
)

# Events that can move a lead between plans, with the conditions each may be narrowed by
# ("" is the event's rule whatever the condition).
EVENTS = (
    "arrived",
    "call-no-answer",
    "call-voicemail",
    "call-talked",
    "call-bad-number",
    "appointment-set",
    "appointment-missed",
    "appointment-shown",
    "visit-no-sale",
    "reply-received",
    "sold",
    "bought-elsewhere",
    "gone-silent",
    "opted-out",
    "deceased",
    "plan-finished",
    "re-engage",
)
LEAD_TYPES = ("internet", "phone", "walk-in", "referral", "other")
OBJECTIONS = ("price", "trade", "payment", "credit", "spouse", "timing", "shopping")
CONDITIONS: dict[str, tuple[str, ...]] = {event: ("",) for event in EVENTS} | {
    "arrived": ("", *LEAD_TYPES),
    "visit-no-sale": ("", *OBJECTIONS),
}

TEMPLATE_CHANNELS = ("email", "text", "call")
SEND_CHANNELS = ("email", "text")
TASK_CHANNELS = tuple(value for value, _ in CHANNELS)
ROLES = ("", *Role.values)

# Sample merge fields a template must render with (strictly: an unknown field is an error). Two
# samples: a full one, and one with the blanks real leads have (no first name, no vehicle, no
# trade, no incentive), so `{{ trade.year }}` or a loop over a missing value is caught too.
SAMPLE_FIELDS = {
    "customer": {"first_name": "Ann", "last_name": "Lee", "full_name": "Ann Lee"},
    "vehicle": "2026 Honda Accord EX-L",
    "trade": "2017 Honda Civic LX",
    "owner": {"name": "Sam Seller", "first_name": "Sam", "phone": "(312) 555-0111", "email": "s@example.com"},
    "rooftop": {
        "name": "Demo Motors",
        "phone": "(312) 555-0100",
        "email": "sales@demo.example",
        "website": "https://demo.example",
        "address": "100 Lake St, Chicago, IL 60601",
    },
    "incentive": {
        "title": "0.9% APR for 60 months",
        "description": "On approved credit through the manufacturer's finance company.",
        "valid_until": "March 31, 2026",
    },
    "appointment": {
        "when": "Thursday, March 12 at 2:30 PM",
        "day": "Thursday, March 12",
        "time": "2:30 PM",
        "with": "Sam Seller",
    },
}
SAMPLE_BLANKS = SAMPLE_FIELDS | {
    "customer": {"first_name": "", "last_name": "", "full_name": ""},
    "vehicle": "",
    "trade": "",
    "incentive": {"title": "", "description": "", "valid_until": ""},
    "appointment": {"when": "", "day": "", "time": "", "with": ""},
}

MAX_TEXT = 1_000_000  # characters: a plan file is a few dozen kilobytes
MAX_OFFSET = dt.timedelta(days=5 * 366)
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")
_AFTER = re.compile(r"^\s*(\d+)\s+([a-z][a-z -]*?)\s*$")
_UNITS = {
    "minute": "minutes",
    "minutes": "minutes",
    "hour": "hours",
    "hours": "hours",
    "day": "days",
    "days": "days",
    "business-day": "business-days",
    "business-days": "business-days",
}
_UNIT_SIZE = {
    "minutes": dt.timedelta(minutes=1),
    "hours": dt.timedelta(hours=1),
    "days": dt.timedelta(days=1),
    "business-days": dt.timedelta(days=1),
}
_UNIT_ONE = {"minutes": "minute", "hours": "hour", "days": "day", "business-days": "business-day"}

_TEMPLATE_FIELDS = ("key", "name", "channel", "purpose", "subject", "body")
_PLAN_FIELDS = ("key", "name", "kind", "then", "active", "description", "steps")
_STEP_FIELDS = (
    "name",
    "after",
    "before",
    "from",
    "window",
    "channel",
    "action",
    "role",
    "voicemail",
    "script",
    "skip_if",
    "repeat",
    "template",
)
_TRANSITION_FIELDS = ("event", "condition", "plan")


class PlanFileError(ValueError):
    """A plan file that cannot be loaded. `problems` lists every problem, each naming its place."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


# --------------------------------------------------------------------------- reading


def _twice(node: yaml.Node) -> str:
    """The first key written twice in one mapping, as "line N: ...", or "". Plain YAML loading
    silently keeps the last one (two `after:` in one step would lose the first)."""
    stack, visited = [node], set()
    while stack:
        node = stack.pop()
        if id(node) in visited:  # an alias: the same node again (and a "billion laughs" stays cheap)
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        return f"line {key.start_mark.line + 1}: the field {key.value!r} is written twice"
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return ""


def _yaml_read(text: str) -> Any:
    if len(text) > MAX_TEXT:
        raise PlanFileError([f"the file is too large ({len(text):,} characters; at most {MAX_TEXT:,})"])
    try:
        data = yaml.safe_load(text)
        # Composing builds nodes only (no objects), so it is as safe as safe_load.
        twice = _twice(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.constructor.ConstructorError as exc:
        if "constructor for the tag" not in (exc.problem or ""):
            raise PlanFileError([f"not valid YAML: {exc}"]) from None
        where = f"line {exc.problem_mark.line + 1}" if exc.problem_mark else "file"
        raise PlanFileError(
            [f"{where}: YAML tags such as !!python/... are not allowed in a plan file ({exc.problem})"]
        ) from None
    except yaml.YAMLError as exc:
        raise PlanFileError([f"not valid YAML: {exc}"]) from None
    if twice:
        raise PlanFileError([twice])
    return data


def _choices(values) -> str:
    shown = [repr(v) if v == "" else v for v in values]
    return ", ".join(shown[:-1]) + f" or {shown[-1]}" if len(shown) > 1 else shown[0]


class _Checker:
    """Collects problems while it turns raw YAML values into clean ones."""

    def __init__(self):
        self.problems: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def fields(
        self, where: str, raw: Any, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> dict | None:
        if not isinstance(raw, dict):
            self.add(where, f"expected a mapping of fields, got {_kind(raw)}")
            return None
        for name in raw:
            if name not in allowed:
                self.add(where, f"unknown field {_show(name)} (fields: {', '.join(allowed)})")
        for name in required:
            if name not in raw or raw[name] is None:
                self.add(where, f"{name} is missing")
        return raw

    def text(
        self, where: str, raw: dict, name: str, *, default: str = "", max_length: int = 0, line: bool = False
    ) -> str:
        value = raw.get(name, default)
        if value is None:
            return default
        if not isinstance(value, str):
            self.add(where, f"{name} must be text, got {_kind(value)} {_show(value)} (put it in quotes)")
            return default
        if max_length and len(value) > max_length:
            self.add(where, f"{name} is too long ({len(value)} characters; at most {max_length})")
        if line and "\n" in value:
            self.add(where, f"{name} must be one line")
        return value

    def choice(self, where: str, raw: dict, name: str, allowed, *, default: str) -> str:
        value = raw.get(name)
        if value is None:  # absent: the default (a required field's absence is reported once)
            return default
        if value not in allowed:
            self.add(where, f"{name} {_show(value)} is not one of {_choices(allowed)}")
            return default
        return value

    def key(self, where: str, raw: dict, name: str = "key") -> str:
        value = self.text(where, raw, name)
        if value and (not _SLUG.match(value) or len(value) > 80):
            self.add(where, f"{name} {value!r} must be up to 80 letters, digits, '-' or '_'")
        return value

    def flag(self, where: str, raw: dict, name: str, *, default: bool = False) -> bool:
        value = raw.get(name, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(where, f"{name} must be true or false, got {_show(value)}")
            return default
        return value

    def render(self, where: str, name: str, source: str) -> None:
        for sample in (SAMPLE_FIELDS, SAMPLE_BLANKS):
            try:
                template_render(source, sample, strict=True)
            except TemplateProblem as exc:
                self.add(where, f"{name} does not render: {exc}")
                return


def _show(value: Any) -> str:
    """A value quoted in a message: scalars as written, anything else by its kind only (a YAML
    alias can make a list whose repr would be enormous)."""
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return _kind(value)


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeiou" else f"a {word}"


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "nothing"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _list(check: _Checker, data: dict, name: str) -> list:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        check.add(name, f"expected a list, got {_kind(value)}")
        return []
    return value


def _after_parse(check: _Checker, where: str, raw: dict, field: str = "after") -> tuple[int, str]:
    value = raw.get(field)
    if value is None:
        return 0, PlanStep.Unit.MINUTES
    match = _AFTER.match(value) if isinstance(value, str) else None
    if match is None:
        check.add(
            where, f"{field} {_show(value)} must read '<number> <unit>', e.g. '2 hours' or '3 business-days'"
        )
        return 0, PlanStep.Unit.MINUTES
    amount, unit = int(match[1]), _UNITS.get(re.sub(r"\s+", "-", match[2]))
    if unit is None:
        check.add(
            where, f"unknown unit {match[2]!r} in {field} {value!r} (use {_choices(PlanStep.Unit.values)})"
        )
        return 0, PlanStep.Unit.MINUTES
    if amount * _UNIT_SIZE[unit] > MAX_OFFSET:
        check.add(where, f"{field} {value!r} is more than five years")
        return 0, PlanStep.Unit.MINUTES
    return amount, unit


def _template_check(check: _Checker, index: int, raw: Any) -> dict | None:
    where = f"templates[{index + 1}]"
    if isinstance(raw, dict) and isinstance(raw.get("key"), str):
        where = f"templates[{raw['key']}]"
    raw = check.fields(where, raw, _TEMPLATE_FIELDS, ("key", "name", "channel", "body"))
    if raw is None:
        return None
    row = {
        "key": check.key(where, raw),
        "name": check.text(where, raw, "name", max_length=200, line=True),
        "channel": check.choice(where, raw, "channel", TEMPLATE_CHANNELS, default=""),
        "purpose": check.choice(
            where, raw, "purpose", MessageTemplate.Purpose.values, default=MessageTemplate.Purpose.MARKETING
        ),
        "subject": check.text(where, raw, "subject", max_length=300, line=True),
        "body": check.text(where, raw, "body"),
    }
    if row["channel"] == "email" and not row["subject"].strip():
        check.add(where, "an email template needs a subject")
    if row["channel"] in ("text", "call") and row["subject"]:
        check.add(where, f"a {row['channel']} template has no subject")
    if "body" in raw and not row["body"].strip():
        check.add(where, "body is empty")
    check.render(where, "subject", row["subject"])
    check.render(where, "body", row["body"])
    return row


def _step_check(check: _Checker, plan_where: str, index: int, raw: Any, templates: dict[str, str]) -> dict:
    where = f"{plan_where} step {index + 1}"
    if isinstance(raw, dict) and isinstance(raw.get("name"), str):
        where += f" {raw['name']!r}"
    raw = check.fields(where, raw, _STEP_FIELDS, ("name", "channel")) or {}
    # `before: 1 day` times a step back from the appointment the plan runs for (reminders);
    # `after:` counts forward from enrolment or the previous step.
    before = raw.get("before") is not None
    if before and raw.get("after") is not None:
        check.add(where, "a step has either after: or before:, not both")
    elif not before and raw.get("after") is None and isinstance(raw, dict) and raw:
        check.add(where, "after is missing (or before: for a step timed back from the appointment)")
    if raw.get("from") == PlanStep.From.APPOINTMENT:
        check.add(
            where, "write before: '<n> <unit>' for a step timed from the appointment, not from: appointment"
        )
    amount, unit = _after_parse(check, where, raw, "before" if before else "after")
    row = {
        "name": check.text(where, raw, "name", max_length=200, line=True),
        "amount": amount,
        "unit": unit,
        "counted_from": PlanStep.From.APPOINTMENT
        if before
        else check.choice(
            where,
            raw,
            "from",
            PlanStep.From.values,
            default=PlanStep.From.PREVIOUS,
        ),
        "window": check.choice(
            where, raw, "window", PlanStep.Window.values, default=PlanStep.Window.BUSINESS_HOURS
        ),
        "channel": check.choice(where, raw, "channel", TASK_CHANNELS, default=""),
        "action": check.choice(where, raw, "action", PlanStep.Action.values, default=PlanStep.Action.TASK),
        "role": check.choice(where, raw, "role", ROLES, default=""),
        "voicemail": check.flag(where, raw, "voicemail"),
        "script": check.text(where, raw, "script"),
        "skip_if": [],
        "repeat": check.flag(where, raw, "repeat"),
        "template": check.key(where, raw, "template") if raw.get("template") is not None else "",
    }
    if row["counted_from"] == PlanStep.From.APPOINTMENT and not before:
        row["counted_from"] = PlanStep.From.PREVIOUS  # reported above
    skip_if = raw.get("skip_if") or []
    if isinstance(skip_if, str):
        skip_if = [skip_if]
    if not isinstance(skip_if, list):
        check.add(where, f"skip_if must be a list, got {_kind(skip_if)}")
        skip_if = []
    for condition in skip_if:
        if condition not in SKIP_CONDITIONS:
            check.add(where, f"skip_if {_show(condition)} is not one of {_choices(SKIP_CONDITIONS)}")
    # Canonical order, no repeats: two files that mean the same compare equal.
    row["skip_if"] = [c for c in SKIP_CONDITIONS if c in skip_if]
    channel, template = row["channel"], row["template"]
    if row["action"] == PlanStep.Action.SEND:
        if channel and channel not in SEND_CHANNELS:
            check.add(where, f"a send step's channel must be email or text, not {channel!r}")
        if not template:
            check.add(where, "a send step needs a template")
    if template:
        if template not in templates:
            check.add(where, f"template {template!r} is neither in the file nor in the rooftop")
        elif row["action"] == PlanStep.Action.SEND and channel and templates[template] != channel:
            check.add(
                where,
                f"template {template!r} is {_a(templates[template])} template; this step sends by {channel}",
            )
    if row["voicemail"] and channel and channel != "call":
        check.add(where, "voicemail is only for call steps")
    if row["repeat"]:
        if row["amount"] == 0:
            check.add(where, "a repeating step needs an interval (after: e.g. '30 days')")
        if row["counted_from"] != PlanStep.From.PREVIOUS:
            check.add(where, "a repeating step is counted from the previous step (from: previous)")
    check.render(where, "script", row["script"])
    return row


def _plan_check(
    check: _Checker, index: int, raw: Any, templates: dict[str, str], plans: set[str]
) -> dict | None:
    where = f"plans[{index + 1}]"
    if isinstance(raw, dict) and isinstance(raw.get("key"), str):
        where = f"plans[{raw['key']}]"
    raw = check.fields(where, raw, _PLAN_FIELDS, ("key", "name", "steps"))
    if raw is None:
        return None
    row = {
        "key": check.key(where, raw),
        "name": check.text(where, raw, "name", max_length=200, line=True),
        "kind": check.choice(where, raw, "kind", Plan.Kind.values, default=Plan.Kind.PRIMARY),
        "then": check.key(where, raw, "then") if raw.get("then") is not None else "",
        "active": check.flag(where, raw, "active", default=True),
        "description": check.text(where, raw, "description"),
        "steps": [],
    }
    if row["then"] and row["then"] not in plans:
        check.add(where, f"then {row['then']!r} is neither a plan in the file nor in the rooftop")
    steps = raw.get("steps")
    if steps is not None and not isinstance(steps, list):
        check.add(where, f"steps must be a list, got {_kind(steps)}")
    elif "steps" in raw:
        if not steps:
            check.add(where, "a plan needs at least one step (a lead on it would have no next step)")
        row["steps"] = [_step_check(check, where, i, step, templates) for i, step in enumerate(steps)]
    for i, step in enumerate(row["steps"][:-1]):
        if step["repeat"]:
            check.add(f"{where} step {i + 1} {step['name']!r}", "only the last step can repeat")
    if row["then"] and row["steps"] and row["steps"][-1]["repeat"]:
        check.add(where, "a plan whose last step repeats never ends: it cannot have `then`")
    return row


def _transition_check(check: _Checker, index: int, raw: Any, plans: set[str]) -> dict | None:
    where = f"transitions[{index + 1}]"
    raw = check.fields(where, raw, _TRANSITION_FIELDS, ("event", "plan"))
    if raw is None:
        return None
    event = check.text(where, raw, "event")
    if event and event not in EVENTS:
        check.add(where, f"unknown event {event!r} (events: {', '.join(EVENTS)})")
    condition = check.text(where, raw, "condition")
    if event in CONDITIONS and condition not in CONDITIONS[event]:
        allowed = CONDITIONS[event]
        check.add(
            where,
            f"event {event!r} takes no condition, got {condition!r}"
            if allowed == ("",)
            else f"condition {condition!r} of {event!r} is not one of {_choices(allowed)}",
        )
    plan = check.key(where, raw, "plan")
    if plan and plan not in plans:
        check.add(where, f"plan {plan!r} is neither in the file nor in the rooftop")
    return {"event": event, "condition": condition, "plan": plan}


def _duplicates(check: _Checker, section: str, keys: list) -> None:
    seen = set()
    for key in keys:
        if key in seen:
            check.add(section, f"{key} appears twice")
        seen.add(key)


def plans_check(*, rooftop: Rooftop, text: str) -> tuple[list[dict], list[dict], list[dict]]:
    """Parse and validate a plan file against the rooftop without writing anything. Returns
    (templates, plans, transitions) as clean rows; raises `PlanFileError` listing every problem."""
    data = _yaml_read(text)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PlanFileError(
            [f"a plan file is a mapping with templates, plans and transitions, not {_kind(data)}"]
        )
    check = _Checker()
    for name in data:
        if name not in ("templates", "plans", "transitions"):
            check.add("file", f"unknown section {_show(name)} (sections: templates, plans, transitions)")
    raw_templates = _list(check, data, "templates")
    raw_plans = _list(check, data, "plans")
    raw_transitions = _list(check, data, "transitions")

    # Keys a step or a transition may name: the file's and the rooftop's.
    known_templates = dict(MessageTemplate.objects.filter(rooftop=rooftop).values_list("key", "channel"))
    known_plans = set(Plan.objects.filter(rooftop=rooftop).values_list("key", flat=True))
    templates = [t for i, raw in enumerate(raw_templates) if (t := _template_check(check, i, raw))]
    _duplicates(check, "templates", [f"key {t['key']!r}" for t in templates if t["key"]])
    file_templates = {t["key"]: t["channel"] for t in templates if t["key"]}
    file_plans = {
        raw["key"] for raw in raw_plans if isinstance(raw, dict) and isinstance(raw.get("key"), str)
    }
    plans = [
        p
        for i, raw in enumerate(raw_plans)
        if (p := _plan_check(check, i, raw, known_templates | file_templates, known_plans | file_plans))
    ]
    _duplicates(check, "plans", [f"key {p['key']!r}" for p in plans if p["key"]])
    transitions = [
        t
        for i, raw in enumerate(raw_transitions)
        if (t := _transition_check(check, i, raw, known_plans | file_plans))
    ]
    _duplicates(
        check,
        "transitions",
        [f"event {t['event']!r} with condition {t['condition']!r}" for t in transitions],
    )
    _channel_changes(check, rooftop, templates)
    if check.problems:
        raise PlanFileError(check.problems)
    return templates, plans, transitions


def _channel_changes(check: _Checker, rooftop: Rooftop, templates: list[dict]) -> None:
    """A template already used by a plan step keeps its channel: steps of enrolled leads point at
    it, and an email step must not start sending a text."""
    changed = {t["key"]: t["channel"] for t in templates if t["key"] and t["channel"]}
    for template in MessageTemplate.objects.filter(rooftop=rooftop, key__in=changed):
        if template.channel != changed[template.key] and PlanStep.objects.filter(template=template).exists():
            check.add(
                f"templates[{template.key}]",
                f"is {_a(template.channel)} template used by plan steps; it cannot become "
                f"{changed[template.key]} (give the new one another key)",
            )


# --------------------------------------------------------------------------- writing


def _step_row(step: PlanStep) -> dict:
    """A stored step in the same shape as a checked file step, for comparison and export."""
    return {
        "name": step.name,
        "amount": step.amount,
        "unit": step.unit,
        "counted_from": step.counted_from,
        "window": step.window,
        "channel": step.channel,
        "action": step.action,
        "role": step.role,
        "voicemail": step.voicemail,
        "script": step.script,
        "skip_if": [c for c in SKIP_CONDITIONS if c in (step.skip_if or [])],
        "repeat": step.repeat,
        "template": step.template.key if step.template_id else "",
    }


def _current_steps(plans: list[Plan]) -> dict[int, tuple[PlanVersion | None, list[dict]]]:
    """Each plan's current (highest-numbered) version and its steps, in two queries."""
    current: dict[int, PlanVersion] = {}
    for version in PlanVersion.objects.filter(plan__in=plans).order_by("plan_id", "number"):
        current[version.plan_id] = version
    steps: dict[int, list[dict]] = {version.pk: [] for version in current.values()}
    for step in (
        PlanStep.objects.filter(version__in=current.values()).select_related("template").order_by("position")
    ):
        steps[step.version_id].append(_step_row(step))
    return {
        plan.pk: (current.get(plan.pk), steps[current[plan.pk].pk] if plan.pk in current else [])
        for plan in plans
    }


def plans_load(*, rooftop: Rooftop, text: str, now: dt.datetime, by: User | None = None) -> dict:
    """Import a plan file into the rooftop (see the module docstring). Returns how many
    templates, plans and transitions the file held and how many new plan versions it made."""
    templates, plans, transitions = plans_check(rooftop=rooftop, text=text)
    with transaction.atomic():
        # One import at a time per rooftop: version numbers are "last + 1".
        list(Rooftop.objects.select_for_update().filter(pk=rooftop.pk).values_list("pk", flat=True))
        by_key: dict[str, MessageTemplate] = {}
        for row in templates:
            by_key[row["key"]], _ = MessageTemplate.objects.update_or_create(
                rooftop=rooftop, key=row["key"], defaults={k: v for k, v in row.items() if k != "key"}
            )
        missing = {s["template"] for p in plans for s in p["steps"] if s["template"]} - set(by_key)
        by_key |= {t.key: t for t in MessageTemplate.objects.filter(rooftop=rooftop, key__in=missing)}

        saved = []
        for row in plans:
            plan, _ = Plan.objects.update_or_create(
                rooftop=rooftop,
                key=row["key"],
                defaults={k: row[k] for k in ("name", "kind", "then", "active", "description")},
            )
            saved.append((plan, row["steps"]))
        current = _current_steps([plan for plan, _ in saved])
        versions = 0
        for plan, steps in saved:
            version, existing = current[plan.pk]
            if version is not None and existing == steps:
                continue
            version = PlanVersion.objects.create(
                plan=plan,
                number=(version.number if version else 0) + 1,
                created_at=now,
                created_by=by,
                note="imported",
            )
            PlanStep.objects.bulk_create(
                PlanStep(
                    version=version,
                    position=position,
                    **{k: v for k, v in step.items() if k != "template"},
                    template=by_key[step["template"]] if step["template"] else None,
                )
                for position, step in enumerate(steps, start=1)
            )
            versions += 1

        plan_ids = dict(Plan.objects.filter(rooftop=rooftop).values_list("key", "pk"))
        for row in transitions:
            Transition.objects.update_or_create(
                rooftop=rooftop,
                event=row["event"],
                condition=row["condition"],
                defaults={"plan_id": plan_ids[row["plan"]]},
            )
    return {
        "templates": len(templates),
        "plans": len(plans),
        "versions": versions,
        "transitions": len(transitions),
    }


def plans_install_defaults(*, rooftop: Rooftop, now: dt.datetime, by: User | None = None) -> dict:
    """Load the plans shipped with Pursuit (defaults.yaml) into the rooftop. Safe to run again:
    plans the rooftop has not changed get no new version."""
    return plans_load(rooftop=rooftop, text=DEFAULTS.read_text(encoding="utf-8"), now=now, by=by)


# --------------------------------------------------------------------------- exporting


class _Flow(dict):
    """A mapping written on one line (transitions)."""


class _FlowList(list):
    """A list written on one line (skip_if)."""


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow=False, indentless=False):
        # Lists indented under their key, as people write them.
        return super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str):
    # Multi-line text (bodies, scripts) as a literal block, the way it was written.
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(_Flow, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v, flow_style=True))
_Dumper.add_representer(
    _FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True)
)


def _after(amount: int, unit: str) -> str:
    return f"{amount} {_UNIT_ONE[unit] if amount == 1 else unit}"


def plans_dump(*, rooftop: Rooftop) -> str:
    """The rooftop's templates, plans (their current steps) and transitions as a plan file."""
    templates = []
    for t in MessageTemplate.objects.filter(rooftop=rooftop).order_by("pk"):
        row = {"key": t.key, "name": t.name, "channel": t.channel, "purpose": t.purpose}
        if t.subject:
            row["subject"] = t.subject
        row["body"] = t.body
        templates.append(row)

    plans = []
    all_plans = list(Plan.objects.filter(rooftop=rooftop).order_by("pk"))
    current = _current_steps(all_plans)
    for plan in all_plans:
        row = {"key": plan.key, "name": plan.name, "kind": plan.kind}
        if plan.then:
            row["then"] = plan.then
        if not plan.active:
            row["active"] = False
        if plan.description:
            row["description"] = plan.description
        row["steps"] = [_step_out(step) for step in current[plan.pk][1]]
        plans.append(row)

    order = {event: i for i, event in enumerate(EVENTS)}
    rules = sorted(
        Transition.objects.filter(rooftop=rooftop).select_related("plan"),
        key=lambda t: (
            order.get(t.event, len(order)),
            t.event,
            CONDITIONS.get(t.event, ()).index(t.condition)
            if t.condition in CONDITIONS.get(t.event, ())
            else len(CONDITIONS.get(t.event, ())),
            t.condition,
        ),
    )
    transitions = [
        _Flow({"event": t.event, **({"condition": t.condition} if t.condition else {}), "plan": t.plan.key})
        for t in rules
    ]
    document = {"templates": templates, "plans": plans, "transitions": transitions}
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000)


def _step_out(step: dict) -> dict:
    """A step as written in a file: the always-meaningful fields, then those that differ from
    their defaults."""
    timing = (
        {"before": _after(step["amount"], step["unit"])}
        if step["counted_from"] == PlanStep.From.APPOINTMENT
        else {"after": _after(step["amount"], step["unit"]), "from": step["counted_from"]}
    )
    row = {
        "name": step["name"],
        **timing,
        "window": step["window"],
        "channel": step["channel"],
        "action": step["action"],
    }
    if step["role"]:
        row["role"] = step["role"]
    if step["voicemail"]:
        row["voicemail"] = True
    if step["template"]:
        row["template"] = step["template"]
    if step["skip_if"]:
        row["skip_if"] = _FlowList(step["skip_if"])
    if step["repeat"]:
        row["repeat"] = True
    if step["script"]:
        row["script"] = step["script"]
    return row
