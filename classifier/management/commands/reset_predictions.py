import sys

from django.core.management.base import BaseCommand, CommandError

from classifier.models import Prediction
from classifier.predictions import services

NO_TERMINAL = (
    "No terminal to confirm the reset; nothing was deleted. Rerun with --yes to reset without asking."
)


class Command(BaseCommand):
    help = "Delete every prediction and its stored image, and restart the id sequence at 1."

    def add_arguments(self, parser):
        parser.add_argument(
            "--yes",
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation.",
        )

    def handle(self, *args, interactive: bool, **options):
        # A script or a container without a TTY cannot answer; asking anyway would read
        # whatever its stdin holds, or end in an EOFError traceback.
        if interactive and (sys.stdin is None or sys.stdin.closed or not sys.stdin.isatty()):
            raise CommandError(NO_TERMINAL)
        count = Prediction.objects.count()
        if interactive:
            try:
                answer = input(
                    f"This deletes all {count} predictions and their images, and cannot be undone.\n"
                    "Type 'yes' to continue: "
                )
            except EOFError:
                raise CommandError(NO_TERMINAL) from None
            if answer.strip().lower() != "yes":
                raise CommandError("Reset cancelled; nothing was deleted.")
        deleted = services.predictions_reset()
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} predictions; ids restart at 1."))
