"""`pursuit import-leads PATH...`: import .xml (ADF), .eml (ADF in email) and .csv files, or
folders of them. Each file is stored raw first; failures are kept with their reason."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from pursuit.intake.csv_parse import COLUMNS
from pursuit.intake.models import LeadSource, Payload
from pursuit.intake.parsed import PayloadError
from pursuit.intake.services import IntakeError, csv_import, payload_process, payload_store
from pursuit.lib import clock
from pursuit.org.models import Rooftop

CHANNELS = {
    ".xml": Payload.Channel.IMPORT_XML,
    ".adf": Payload.Channel.IMPORT_XML,
    ".eml": Payload.Channel.IMPORT_EML,
    ".csv": Payload.Channel.IMPORT_CSV,
}


def rooftop_named(value: str | None) -> Rooftop:
    if value:
        found = (
            Rooftop.objects.filter(pk=int(value)).first()
            if value.isdigit()
            else Rooftop.objects.filter(name__iexact=value).first()
        )
        if found is None:
            raise CommandError(f"no rooftop {value!r}")
        return found
    found = Rooftop.objects.order_by("id").first()
    if found is None:
        raise CommandError("there is no rooftop yet: run `pursuit load-demo` or create one in the admin")
    return found


class Command(BaseCommand):
    help = "Import leads from .xml, .eml and .csv files or folders. CSV columns: " + ", ".join(COLUMNS)

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--rooftop", help="Rooftop name or id (default: the first)")
        parser.add_argument("--source", help="Lead source name to file the leads under")
        parser.add_argument(
            "--fresh",
            action="store_true",
            help="Treat as new leads: send automatic answers and start the ladder "
            "(default: historical, nothing is sent)",
        )
        parser.add_argument("--batch", type=int, default=500, help="CSV rows per transaction")

    def handle(self, *args, paths, rooftop=None, source=None, fresh=False, batch=500, verbosity=1, **options):
        roof = rooftop_named(rooftop)
        lead_source = None
        if source:
            lead_source, _ = LeadSource.objects.get_or_create(rooftop=roof, name=source)
        files = self._files(paths)
        if not files:
            raise CommandError("no .xml, .eml or .csv files found")
        totals = {"created": 0, "re-inquiry": 0, "failed": 0}
        failures: list[str] = []
        for path in files:
            channel = CHANNELS[path.suffix.lower()]
            payload = payload_store(
                rooftop=roof,
                source=lead_source,
                channel=channel,
                content=path.read_bytes(),
                now=clock.now(),
                name=str(path),
                content_type="text/csv" if channel == Payload.Channel.IMPORT_CSV else "",
            )
            if channel == Payload.Channel.IMPORT_CSV:
                rows = max(sum(1 for _ in path.open("rb")) - 1, 0)
                with tqdm(
                    total=rows, unit="lead", desc=path.name, disable=None if verbosity else True
                ) as bar:
                    counts = csv_import(
                        payload=payload, now=clock.now(), fresh=fresh, batch=batch, progress=bar.update
                    )
                for key in totals:
                    totals[key] += counts[key]
                if counts["failed"]:
                    failures.append(
                        f"{path}: {counts['failed']} rows failed (see failed payloads in the admin)"
                    )
                continue
            try:
                results = payload_process(payload=payload, now=clock.now(), fresh=fresh)
            except (PayloadError, IntakeError) as exc:
                totals["failed"] += 1
                failures.append(f"{path}: {exc}")
                continue
            for result in results:
                totals[result.status] += 1
        self.stdout.write(
            f"{len(files)} files: {totals['created']} leads created, "
            f"{totals['re-inquiry']} re-inquiries, {totals['failed']} failed"
        )
        for line in failures:
            self.stdout.write(f"  failed: {line}")

    def _files(self, paths: list[str]) -> list[Path]:
        found: list[Path] = []
        for value in paths:
            path = Path(value)
            if path.is_dir():
                found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CHANNELS)
            elif path.is_file():
                if path.suffix.lower() not in CHANNELS:
                    raise CommandError(f"{path}: not a .xml, .eml or .csv file")
                found.append(path)
            else:
                raise CommandError(f"{path}: no such file or folder")
        return found
