"""A lead's status set directly, with its timeline entry: for services that react to an event
themselves (appointments, stops). `leads.services.lead_status_change` is the one people use: it
also lets the plans react."""

from __future__ import annotations

import datetime as dt

from pursuit.leads.models import Lead, LeadEvent


def lead_status_set(
    lead: Lead, status: str, *, now: dt.datetime, by, why: str, data: dict | None = None, **fields
) -> bool:
    """Set `status` (and `fields`, e.g. closed_at) and record "Before → After: why". Returns
    False, changing nothing, when the lead already has that status."""
    if lead.status == status:
        return False
    before = lead.status
    Lead.objects.filter(pk=lead.pk).update(status=status, **fields)
    lead.status = status
    for name, value in fields.items():
        setattr(lead, name, value)
    LeadEvent.objects.create(
        lead=lead,
        kind=LeadEvent.Kind.STATUS,
        at=now,
        actor=by,
        text=f"{Lead.Status(before).label} → {Lead.Status(status).label}: {why}",
        data={"from": before, "to": status} | (data or {}),
    )
    return True
