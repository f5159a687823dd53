"""`pursuit run`: the web app and one worker together, for one machine (and `make run`).

Several machines: run the web app with `pursuit run --no-worker` (or any WSGI server on
`pursuit.wsgi:application`) and `pursuit worker` processes separately; see README.
"""

import os
import signal
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from pursuit.org.models import Rooftop, User


class Command(BaseCommand):
    help = "Serve the web app (waitress) with one worker beside it."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 for all)")
        parser.add_argument("--threads", type=int, default=8)
        parser.add_argument("--no-worker", action="store_true", help="Serve the web app only")

    def handle(self, *args, port=8000, host="127.0.0.1", threads=8, no_worker=False, **options):
        from waitress import serve

        from pursuit.wsgi import application

        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            self.stderr.write("The database needs migrating: run `pursuit migrate` first.")
            sys.exit(2)
        worker = None
        if not no_worker:
            worker = subprocess.Popen([sys.executable, "-m", "pursuit.cli", "worker"], env=os.environ.copy())
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.stdout.write(self.style.SUCCESS(f"\nPursuit is running at http://{shown}:{port}/"))
        self.stdout.write(f"  admin:  http://{shown}:{port}/admin/    API: http://{shown}:{port}/api/v1/docs")
        self.stdout.write(
            f"  email:  {settings.EMAIL_BACKEND.rsplit('.', 1)[-1]}    database: "
            f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
        )
        self._print_logins()
        self.stdout.write("  worker: " + ("running" if worker else "not started (--no-worker)") + "\n")
        self.stdout.flush()

        def stop(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            serve(application, host=host, port=port, threads=threads, ident="Pursuit")
        except KeyboardInterrupt:
            pass
        finally:
            if worker is not None:
                worker.terminate()
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()

    def _print_logins(self):
        demo = Rooftop.objects.filter(name="Lakeside Honda").exists()
        users = User.objects.filter(is_active=True).order_by("id")[:10]
        if not users:
            self.stdout.write("  No users yet: `pursuit load-demo` or `pursuit createsuperuser`.")
            return
        self.stdout.write("  logins" + (" (password: pursuit-demo)" if demo else "") + ":")
        for user in users:
            role = "superuser" if user.is_superuser else user.get_role_display()
            self.stdout.write(f"    {user.username:<10} {role}")
