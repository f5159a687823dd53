"""`pursuit import-dnc FILE --date YYYY-MM-DD [--country US]`: import a copy of the national
do-not-call registry (file format: pursuit.compliance.registry). The copy replaces the
country's registry; a file with no number in it changes nothing."""

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pursuit.compliance.gate import REGISTRY_FRESH_DAYS
from pursuit.compliance.services import RegistryFileError, registry_file_import
from pursuit.lib import clock

BAD_LINES_SHOWN = 20


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--date: {value!r} is not a date such as 2026-11-23") from None


class Command(BaseCommand):
    help = (
        "Import a do-not-call registry copy: one number per line (3125550143 or 312,5550143). "
        "It replaces the country's registry."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The registry file (plain text, UTF-8)")
        parser.add_argument("--date", required=True, help="The date of the copy, YYYY-MM-DD")
        parser.add_argument("--country", default="US", choices=["US", "CA"], type=str.upper)

    def handle(self, *args, file, date, country="US", **options):
        copied_on = _date(date)
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file")
        now = clock.now()
        try:
            # Streamed: the file is read one line at a time, never whole. A byte that is not
            # UTF-8 spoils only its line, which is then reported with the others.
            with path.open(encoding="utf-8", errors="replace", newline="") as lines:
                copy, problems = registry_file_import(
                    lines=lines,
                    copied_on=copied_on,
                    at=now,
                    today=now.date(),
                    country=country,
                    file_name=path.name,
                )
        except OSError as exc:
            raise CommandError(f"{file}: {exc.strerror}") from None
        except RegistryFileError as exc:
            self._bad_lines(exc.problems)
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"Imported {copy.numbers:,} number{'s' if copy.numbers != 1 else ''}: the {copy.country} registry "
            f"copy of {copy.copied_on:%Y-%m-%d}."
        )
        self._bad_lines(problems)
        age = (now.date() - copied_on).days
        if age > REGISTRY_FRESH_DAYS:
            self.stderr.write(
                f"Warning: this copy is {age} days old; the law wants one no older than {REGISTRY_FRESH_DAYS} days."
            )

    def _bad_lines(self, problems: list[tuple[int, str]]) -> None:
        if not problems:
            self.stdout.write("No bad lines.")
            return
        more = "+" if len(problems) >= 1000 else ""
        self.stdout.write(f"{len(problems):,}{more} bad line{'s' if len(problems) != 1 else ''} left out:")
        for line, problem in problems[:BAD_LINES_SHOWN]:
            self.stdout.write(f"  line {line}: {problem}")
        if len(problems) > BAD_LINES_SHOWN:
            self.stdout.write(f"  … and {len(problems) - BAD_LINES_SHOWN:,} more")
