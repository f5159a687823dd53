"""Writes on leads and customers: attempts, notes, status, reassignment, merging, and the
speed-to-lead ladder's rungs (run by the worker).

Each function records its change on the lead's timeline in the same transaction.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.db.models import Q

from pursuit.intake.assignment import handoff_choose
from pursuit.leads.models import Customer, CustomerEmail, CustomerPhone, Lead, LeadEvent
from pursuit.org.models import Role, User
from pursuit.plans import services as plans
from pursuit.work.models import Job
from pursuit.work.services import jobs_cancel, notify

LADDER = ("ladder-remind", "ladder-handoff", "ladder-escalate")

ATTEMPT_CHANNELS = {"call": "Call", "email": "Email", "text": "Text", "visit": "In person"}
ATTEMPT_OUTCOMES = {
    "no-answer": "no answer",
    "voicemail": "left voicemail",
    "talked": "talked",
    "bad-number": "bad number",
    "sent": "sent",
}


class LeadError(ValueError):
    """A change the lead's state does not allow; the message says why, in plain words."""


def _locked(lead: Lead) -> Lead:
    return (
        Lead.objects.select_for_update(of=("self",))
        .select_related("customer", "rooftop", "owner")
        .get(pk=lead.pk)
    )


def attempt_log(
    *, lead: Lead, user: User, channel: str, outcome: str, now: dt.datetime, note: str = ""
) -> LeadEvent:
    """A person tried to reach the customer. The first one is the lead's response time (the
    automatic answer never counts) and stops the speed-to-lead ladder."""
    if channel not in ATTEMPT_CHANNELS:
        raise LeadError(f"unknown channel {channel!r}")
    if outcome not in ATTEMPT_OUTCOMES:
        raise LeadError(f"unknown outcome {outcome!r}")
    with transaction.atomic():
        lead = _locked(lead)
        changed = []
        if lead.first_attempt_at is None:
            lead.first_attempt_at = now
            changed.append("first_attempt_at")
            jobs_cancel(lead=lead, kinds=LADDER, now=now)
        if lead.status == Lead.Status.NEW:
            lead.status = Lead.Status.WORKING
            changed.append("status")
        if changed:
            lead.save(update_fields=changed)
        text = f"{ATTEMPT_CHANNELS[channel]}: {ATTEMPT_OUTCOMES[outcome]}"
        event = LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.ATTEMPT,
            at=now,
            actor=user,
            text=f"{text}. {note}".strip() if note else text,
            data={"channel": channel, "outcome": outcome, "note": note},
        )
        if channel in CONTACT_CHANNELS:
            _touch_check(lead, channel, user, now, text)
        plans.on_attempt(lead=lead, channel=channel, outcome=outcome, now=now, by=user)
        return event


CONTACT_CHANNELS = ("call", "email", "text")


def _touch_check(lead: Lead, channel: str, user: User, now: dt.datetime, text: str) -> None:
    """A touch by hand counts against the caps; one the gate would not have allowed is flagged
    in the decision log for the managers (the pages say when a call is allowed, so this is a
    person who called anyway)."""
    from pursuit.compliance.gate import Clearance, decision_record, may_contact, touch_record
    from pursuit.plans.models import Plan, Step

    # The touch is what the due task was for: a reminder call of an appointment plan is
    # transactional (no Sunday ban, not counted against the sales caps); anything else is sales.
    due = (
        Step.objects.filter(
            lead=lead, status=Step.Status.PENDING, action="task", channel=channel, due_at__lte=now
        )
        .select_related("enrolment__version__plan")
        .order_by("due_at", "id")
        .first()
    )
    purpose = "marketing"
    if due is not None and due.enrolment.version.plan.kind == Plan.Kind.TRANSACTIONAL:
        purpose = "transactional"
    answer = may_contact(lead.customer, channel, purpose, now, lead=lead, record=False)
    if not answer.allowed:
        decision_record(
            lead.customer,
            Clearance(
                "flag",
                f"logged-outside:{answer.rule}"[:60],
                f"{text} by {user} while not allowed: {answer.detail}",
            ),
            channel=channel,
            purpose=purpose,
            at=now,
            lead=lead,
        )
    touch_record(
        customer=lead.customer, channel=channel, purpose=purpose, at=now, lead=lead, by=user, what=text
    )


def note_add(*, lead: Lead, user: User, text: str, now: dt.datetime) -> LeadEvent:
    text = text.strip()
    if not text:
        raise LeadError("a note needs some text")
    return LeadEvent.objects.create(lead=lead, kind=LeadEvent.Kind.NOTE, at=now, actor=user, text=text)


def lead_status_change(
    *, lead: Lead, user: User | None, status: str, now: dt.datetime, reason: str = ""
) -> Lead:
    """Move a lead to `status`. Closing it (sold, lost, closed) stops its pending timed work."""
    if status not in Lead.Status.values:
        raise LeadError(f"unknown status {status!r}")
    with transaction.atomic():
        lead = _locked(lead)
        if lead.status == status:
            return lead
        before = lead.status
        lead.status = status
        fields = ["status"]
        if status == Lead.Status.SOLD:
            lead.sold_at, fields = now, [*fields, "sold_at"]
        if status in (Lead.Status.SOLD, Lead.Status.LOST, Lead.Status.CLOSED):
            lead.closed_at = now
            lead.lost_reason = reason[:200] if status == Lead.Status.LOST else lead.lost_reason
            fields += ["closed_at", "lost_reason"]
            Job.objects.filter(lead=lead, status=Job.Status.PENDING).update(
                status=Job.Status.CANCELLED, done_at=now
            )
        elif before not in Lead.OPEN_STATUSES:
            lead.closed_at, fields = None, [*fields, "closed_at"]
        try:
            with transaction.atomic():
                lead.save(update_fields=fields)
        except IntegrityError:
            raise LeadError("this customer already has an open lead: work that one instead") from None
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.STATUS,
            at=now,
            actor=user,
            text=f"{Lead.Status(before).label} → {lead.get_status_display()}"
            + (f": {reason}" if reason else ""),
            data={"from": before, "to": status, "reason": reason},
        )
        plans.on_status(lead=lead, before=before, status=status, reason=reason, now=now, by=user)
        return lead


def lead_reassign(
    *,
    lead: Lead,
    owner: User,
    now: dt.datetime,
    by: User | None = None,
    why: str = "",
    kind: str = LeadEvent.Kind.ASSIGNED,
) -> Lead:
    """Give the lead to `owner`, record it and tell them."""
    if owner.rooftop_id != lead.rooftop_id:
        raise LeadError(f"{owner.display_name} does not work at {lead.rooftop}")
    with transaction.atomic():
        lead = _locked(lead)
        before = lead.owner
        if before == owner:
            return lead
        lead.owner, lead.assigned_at = owner, now
        lead.flags = [f for f in lead.flags if f != "unassigned"]
        lead.save(update_fields=["owner", "assigned_at", "flags"])
        # The lead's open tasks follow it (a manager's or another role's task stays theirs).
        from pursuit.plans.models import Step

        Step.objects.filter(
            Q(assignee=before) | Q(assignee__isnull=True), lead=lead, status__in=Step.OPEN, action="task"
        ).update(assignee=owner)
        text = f"Assigned to {owner.display_name}" + (f" (was {before.display_name})" if before else "")
        LeadEvent.objects.create(
            lead=lead,
            kind=kind,
            at=now,
            actor=by,
            text=text + (f": {why}" if why else ""),
            data={"owner": owner.pk, "previous": before.pk if before else None, "why": why},
        )
        notify(
            user=owner,
            lead=lead,
            kind="assigned",
            now=now,
            text=f"{lead.customer} is now yours" + (f": {why}" if why else ""),
        )
        return lead


def leads_reassign(*, leads, owner: User, now: dt.datetime, by: User, why: str = "") -> int:
    """A manager gives many leads to one person (someone left, or is off for a week). Each lead
    as `lead_reassign` would; returns how many changed hands."""
    moved = 0
    for lead in leads:
        if lead.owner_id != owner.pk:
            lead_reassign(lead=lead, owner=owner, now=now, by=by, why=why or "reassigned in bulk")
            moved += 1
    return moved


def customer_merge(*, keep: Customer, merge: Customer, now: dt.datetime, by: User | None = None) -> Customer:
    """Merge `merge` into `keep`: contacts, leads and their timelines move to `keep`; `merge`
    stays as a row pointing at `keep`. Nothing is deleted.

    If both have an open lead, the merged customer's open lead is closed (its history kept) and
    the survivor's open lead carries on, so the customer still has one open lead.
    """
    if keep.pk == merge.pk:
        raise LeadError("a customer cannot be merged into itself")
    if keep.rooftop_id != merge.rooftop_id:
        raise LeadError("customers of different rooftops cannot be merged")
    with transaction.atomic():
        keep = Customer.objects.select_for_update().get(pk=keep.pk)
        merge = Customer.objects.select_for_update().get(pk=merge.pk)
        if merge.merged_into_id:
            raise LeadError(f"{merge} was already merged")
        if keep.merged_into_id:
            raise LeadError(f"{keep} was itself merged into another customer: keep that one instead")
        keep_open = Lead.objects.filter(customer=keep, status__in=Lead.OPEN_STATUSES).first()
        text = f"Customer {merge} (#{merge.pk}) merged into {keep} (#{keep.pk})"
        for lead in Lead.objects.filter(customer=merge).order_by("pk"):
            if lead.is_open and keep_open is not None:
                Job.objects.filter(lead=lead, status=Job.Status.PENDING).update(
                    status=Job.Status.CANCELLED, done_at=now
                )
                Lead.objects.filter(pk=lead.pk).update(
                    status=Lead.Status.CLOSED, closed_at=now, lost_reason=f"merged into lead {keep_open.pk}"
                )
                LeadEvent.objects.create(
                    lead=lead,
                    kind=LeadEvent.Kind.STATUS,
                    at=now,
                    actor=by,
                    text=f"Closed: duplicate of lead {keep_open.pk}",
                    data={"from": lead.status, "to": "closed", "merged_into": keep_open.pk},
                )
            Lead.objects.filter(pk=lead.pk).update(customer=keep)
            LeadEvent.objects.create(
                lead=lead,
                kind=LeadEvent.Kind.MERGED,
                at=now,
                actor=by,
                text=text,
                data={"keep": keep.pk, "merged": merge.pk},
            )
        if keep_open is not None:
            LeadEvent.objects.create(
                lead=keep_open,
                kind=LeadEvent.Kind.MERGED,
                at=now,
                actor=by,
                text=text,
                data={"keep": keep.pk, "merged": merge.pk},
            )
        have_emails = set(keep.emails.values_list("address", flat=True))
        for email in merge.emails.all():
            if email.address in have_emails:
                email.delete()  # the same address is already on `keep`
            else:
                CustomerEmail.objects.filter(pk=email.pk).update(customer=keep)
        have_phones = set(keep.phones.values_list("match_key", flat=True))
        for phone in merge.phones.all():
            if phone.match_key in have_phones:
                phone.delete()
            else:
                CustomerPhone.objects.filter(pk=phone.pk).update(customer=keep)
        blanks = [
            f
            for f in (
                "first_name",
                "middle_name",
                "last_name",
                "preferred_contact",
                "street",
                "apartment",
                "city",
                "region",
                "postal_code",
                "country",
                "time_zone",
            )
            if not getattr(keep, f) and getattr(merge, f)
        ]
        for field in blanks:
            setattr(keep, field, getattr(merge, field))
        if blanks:
            keep.save(update_fields=blanks)
        merge.merged_into = keep
        merge.save(update_fields=["merged_into"])
        return keep


# --------------------------------------------------------------------------- the ladder (worker)


def _untouched(job: Job) -> Lead | None:
    """The job's lead, locked, if it is still open and nobody has attempted contact."""
    lead = _locked(job.lead)
    if not lead.is_open or lead.first_attempt_at is not None:
        return None
    return lead


def _waited(lead: Lead, now: dt.datetime) -> str:
    return f"{int((now - lead.created_at).total_seconds() // 60)} min"


def ladder_remind_run(job: Job, *, now: dt.datetime) -> None:
    with transaction.atomic():
        lead = _untouched(job)
        if lead is None or lead.owner is None:
            return
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.REMINDER,
            at=now,
            text=f"{lead.owner.display_name} reminded: no attempt after {_waited(lead, now)}",
        )
        notify(
            user=lead.owner,
            lead=lead,
            kind="reminder",
            now=now,
            text=f"Call {lead.customer} now: waiting {_waited(lead, now)} with no attempt",
        )


def ladder_handoff_run(job: Job, *, now: dt.datetime) -> None:
    with transaction.atomic():
        lead = _untouched(job)
        if lead is None or not lead.rooftop.handoff_enabled:
            return
        previous = lead.owner
        owner = handoff_choose(lead=lead, now=now)
        if owner is None:
            LeadEvent.objects.create(
                lead=lead,
                kind=LeadEvent.Kind.HANDED_OFF,
                at=now,
                text="Not handed off: no other agent is on duty",
                data={"owner": None},
            )
            return
        lead_reassign(
            lead=lead,
            owner=owner,
            now=now,
            kind=LeadEvent.Kind.HANDED_OFF,
            why=f"no attempt after {_waited(lead, now)}",
        )
        if previous is not None:
            notify(
                user=previous,
                lead=lead,
                kind="handed-off",
                now=now,
                email=False,
                text=f"{lead.customer} was handed to {owner.display_name}: no attempt after {_waited(lead, now)}",
            )


def ladder_escalate_run(job: Job, *, now: dt.datetime) -> None:
    with transaction.atomic():
        lead = _untouched(job)
        if lead is None:
            return
        managers = list(
            User.objects.filter(rooftop=lead.rooftop, role__in=(Role.MANAGER, Role.ADMIN), is_active=True)
        )
        owner = lead.owner.display_name if lead.owner else "nobody"
        LeadEvent.objects.create(
            lead=lead,
            kind=LeadEvent.Kind.ESCALATED,
            at=now,
            text=f"Managers told: no attempt after {_waited(lead, now)} (owner: {owner})",
            data={"managers": [m.pk for m in managers]},
        )
        for manager in managers:
            notify(
                user=manager,
                lead=lead,
                kind="escalated",
                now=now,
                text=f"{lead.customer}: no attempt after {_waited(lead, now)} (owner: {owner})",
            )
