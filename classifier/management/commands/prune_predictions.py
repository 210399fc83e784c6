from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import filesizeformat

from classifier.predictions import retention


class Command(BaseCommand):
    help = (
        "Delete predictions older than --older-than DAYS, with their stored images (unless a newer "
        "prediction shares the image). A dry run unless --yes is given; deletes in batches."
    )

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS", dest="days")
        parser.add_argument("--yes", action="store_true", help="Delete; without it, only report.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=retention.DEFAULT_BATCH_SIZE,
            help="Records per transaction (default %(default)s).",
        )

    def handle(self, *args, days: int, yes: bool, batch_size: int, **options):
        if days < 1:
            raise CommandError("--older-than must be at least 1 day.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        cutoff = retention.prune_cutoff(older_than_days=days)
        preview = retention.prediction_prune_preview(cutoff=cutoff)
        summary = (
            f"{preview.records} predictions created before {cutoff:%Y-%m-%d %H:%M %Z}, "
            f"{preview.files} image files ({filesizeformat(preview.bytes)})"
        )
        if not yes:
            self.stdout.write(f"Dry run: would delete {summary}. Run again with --yes to delete.")
            return
        deleted = retention.prediction_prune(cutoff=cutoff, batch_size=batch_size)
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} predictions (of {summary})."))
