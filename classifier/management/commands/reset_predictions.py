from django.core.management.base import BaseCommand, CommandError

from classifier import services
from classifier.models import Prediction


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
        count = Prediction.objects.count()
        if interactive:
            answer = input(
                f"This deletes all {count} predictions and their images, and cannot be undone.\n"
                "Type 'yes' to continue: "
            )
            if answer.strip().lower() != "yes":
                raise CommandError("Reset cancelled; nothing was deleted.")
        deleted = services.predictions_reset()
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} predictions; ids restart at 1."))
