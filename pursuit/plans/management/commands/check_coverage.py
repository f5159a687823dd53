"""`pursuit check-coverage [--repair]`: list every open lead with no next step (the list that
must always be empty), and with --repair put each on a plan."""

from django.core.management.base import BaseCommand

from pursuit.lib import clock
from pursuit.plans.services import coverage_gaps, lead_ensure_plan


class Command(BaseCommand):
    help = "List open leads without a next step; --repair gives each a plan. Exit code 1 when any were found."

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true")

    def handle(self, *args, repair=False, **options):
        gaps = list(coverage_gaps().select_related("customer", "rooftop", "owner").order_by("rooftop", "id"))
        for lead in gaps:
            owner = lead.owner.display_name if lead.owner else "no owner"
            self.stdout.write(
                f"lead {lead.pk}  {lead.rooftop}  {lead.customer}  {lead.get_status_display()}  {owner}"
            )
            if repair:
                enrolment = lead_ensure_plan(lead=lead, now=clock.now())
                self.stdout.write(
                    "    repaired: " + (str(enrolment.version) if enrolment else "no plan configured")
                )
        self.stdout.write(f"{len(gaps)} open leads without a next step")
        if gaps and not repair:
            raise SystemExit(1)
