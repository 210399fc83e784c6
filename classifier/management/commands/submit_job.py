import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from classifier.core.exceptions import JobInputError, StorageUnavailableError
from classifier.jobs import services as job_services
from classifier.jobs.submissions import submission_from_paths
from classifier.models import Job

POLL_INTERVAL_S = 0.5


class Command(BaseCommand):
    help = (
        "Submit files, folders or a .zip (with an optional catalogue CSV) as a classification job "
        "for the Celery workers. Prints the job id; --wait shows progress until the job ends."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "paths", nargs="+", metavar="PATH", help="Files, folders, a .zip, a catalogue .csv."
        )
        parser.add_argument("--wait", action="store_true", help="Show a progress bar and wait for the end.")
        parser.add_argument("--user", metavar="USERNAME", help="The job's owner (default: none, staff only).")

    def handle(self, *args, paths, wait, user, **options):
        owner = None
        if user:
            try:
                owner = get_user_model().objects.get_by_natural_key(user)
            except get_user_model().DoesNotExist as exc:
                raise CommandError(f"no user {user!r}") from exc
        try:
            submission = submission_from_paths(paths)
            for link in submission.skipped:
                # Links are never followed: a folder's job holds only the folder's own files.
                self.stderr.write(f"warning: skipped {link}: it is a symbolic link")
            job = job_services.job_create(
                name=submission.name, members=submission.members, catalogue=submission.catalogue, user=owner
            )
        except JobInputError as exc:
            raise CommandError(f"the job was refused: {exc.reason}") from exc
        except (job_services.JobQueueUnavailableError, StorageUnavailableError) as exc:
            raise CommandError(exc.reason) from exc
        self.stdout.write(str(job.pk))
        self.stdout.flush()
        if wait:
            self._wait(job)

    def _wait(self, job: Job) -> None:
        with tqdm(total=job.total, unit="image", file=sys.stderr) as progress:
            while True:
                job.refresh_from_db()
                progress.update(job.finished_members - progress.n)
                if not job.is_active:
                    break
                time.sleep(POLL_INTERVAL_S)
        self.stderr.write(f"job {job.pk} {job.status}: {job.done} classified, {job.failed} failed")
        if job.status != Job.Status.SUCCEEDED:
            raise CommandError(f"job {job.pk} {job.status}: {job.error or 'see its results'}")
