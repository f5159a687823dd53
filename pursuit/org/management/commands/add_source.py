"""`pursuit add-source NAME [--rooftop NAME_OR_ID] [--type TYPE]`: a lead source and its token.

Creates the source (or, when it exists, issues it a new token: the old one stops working) and
prints the token once, with a curl line a lead provider can try. Only the token's hash is kept.
"""

from __future__ import annotations

import shlex

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from pursuit.intake.models import LeadSource
from pursuit.org.models import Rooftop

LEAD_TYPES = [value for value, _ in LeadSource._meta.get_field("lead_type").choices]


def rooftop_find(name_or_id: str | None) -> Rooftop:
    """The rooftop named (or numbered) `name_or_id`, or the first one; CommandError otherwise."""
    rooftops = Rooftop.objects.order_by("id")
    if not rooftops.exists():
        raise CommandError(
            "There is no rooftop yet: run `pursuit load-demo` or create a rooftop in the admin (/admin/)."
        )
    if name_or_id is None:
        return rooftops.first()
    wanted = name_or_id.strip()
    found = rooftops.filter(pk=int(wanted)).first() if wanted.isdigit() else None
    found = found or rooftops.filter(name__iexact=wanted).first()
    if found is None:
        known = ", ".join(f"{r.name} (#{r.pk})" for r in rooftops[:20])
        raise CommandError(f"No rooftop is named or numbered {wanted!r}. Rooftops: {known}.")
    return found


class Command(BaseCommand):
    help = "Create a lead source (or issue a new token to an existing one) and print its token once."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The source's name, e.g. Cars.com")
        parser.add_argument("--rooftop", help="Rooftop name or id (default: the first rooftop)")
        parser.add_argument(
            "--type",
            dest="lead_type",
            choices=LEAD_TYPES,
            help="Kind of leads it sends (default for a new source: internet)",
        )

    def handle(self, *args, name: str, rooftop: str | None, lead_type: str | None, **options):
        name = name.strip()
        if not name:
            raise CommandError("The source needs a name.")
        if len(name) > LeadSource._meta.get_field("name").max_length:
            raise CommandError("The name is too long (100 characters at most).")
        place = rooftop_find(rooftop)
        with transaction.atomic():
            source = LeadSource.objects.select_for_update().filter(rooftop=place, name__iexact=name).first()
            created = source is None
            if created:
                source = LeadSource(rooftop=place, name=name, lead_type=lead_type or "internet")
            elif lead_type:
                source.lead_type = lead_type
            token = source.new_token()
            source.save()

        if created:
            self.stdout.write(
                f"Created lead source {source.name!r} at {place} ({source.get_lead_type_display()})."
            )
        else:
            self.stdout.write(
                f"Lead source {source.name!r} at {place} has a new token; the old one no longer works."
            )
        if not source.active:
            self.stderr.write(
                "Note: this source is inactive; its token is refused until it is activated in the admin."
            )
        self.stdout.write("Token (shown only now: Pursuit keeps only its hash):")
        self.stdout.write(token)
        url = f"{settings.BASE_URL}/api/v1/intake/adf"
        curl = (
            f"curl -X POST {shlex.quote(url)} -H {shlex.quote('Authorization: Bearer ' + token)} "
            f"-H 'Content-Type: application/xml' --data-binary @lead.xml"
        )
        self.stdout.write("Send an ADF lead (lead.xml) with:")
        self.stdout.write(curl)
