from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from classifier.predictions import model_registry


class Command(BaseCommand):
    help = (
        "Model roll-out: `list` the models in a repository folder, `validate` one before it is served, "
        "`activate` one (validate, then point the repository's `current` link at it)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--repository",
            type=Path,
            default=None,
            help="The folder of model versions (default MODEL_REPOSITORY).",
        )
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="List the available models; * marks the served one (MODEL_PATH).")
        for name in ("validate", "activate"):
            action = sub.add_parser(name, help=f"{name.capitalize()} a model: a .tflite file or its folder.")
            action.add_argument("model", type=Path)
            action.add_argument("--manifest", type=Path, default=None)
            action.add_argument(
                "--images",
                type=Path,
                default=None,
                help="A folder of images to classify with both this and the served model.",
            )
            action.add_argument("--max-images", type=int, default=200)

    def handle(self, *args, action: str, repository: Path | None, **options):
        root = repository or Path(settings.MODEL_REPOSITORY)
        if action == "list":
            return self._list(root)
        model_path = self._model_file(options["model"], root)
        images = None
        if options["images"] is not None:
            if not options["images"].is_dir():
                raise CommandError(f"{options['images']} is not a folder")
            images = model_registry.images_in(options["images"], limit=options["max_images"])
        report = model_registry.model_validate(
            model_path=model_path, manifest_path=options["manifest"], images=images
        )
        self._report(report)
        if not report.ok:
            raise CommandError(f"{model_path} is not fit to serve: " + "; ".join(report.problems))
        if action == "activate":
            link = model_registry.model_activate(root=root, version_dir=model_path.parent)
            self.stdout.write(
                self.style.SUCCESS(f"{link} -> {model_path.parent.name}.")
                + f"\nServe it with MODEL_PATH={link / model_path.name} and reload gunicorn (kill -HUP)."
            )
        return None

    def _model_file(self, given: Path, root: Path) -> Path:
        for candidate in (given, root / given):
            if candidate.is_dir():
                files = sorted(candidate.glob("*.tflite"))
                if len(files) != 1:
                    raise CommandError(f"{candidate} holds {len(files)} .tflite files, expected one")
                return files[0]
            if candidate.is_file():
                return candidate
        raise CommandError(f"no model at {given} (nor at {root / given})")

    def _list(self, root: Path) -> None:
        entries = model_registry.model_list(root=root)
        if not entries:
            raise CommandError(f"no models in {root}")
        for entry in entries:
            mark = "*" if entry.served else " "
            self.stdout.write(f"{mark} {entry.version}  {entry.created_at or '-'}  {entry.model_path}")

    def _report(self, report: model_registry.ValidationReport) -> None:
        self.stdout.write(f"model     {report.model_path}")
        self.stdout.write(f"manifest  {report.manifest_path}")
        if report.version:
            self.stdout.write(f"version   {report.version} ({report.backend})")
        if report.images_checked:
            self.stdout.write(f"images    {report.images_checked}, {report.mean_inference_ms:.1f} ms each")
            if report.agreement_with_served is not None:
                self.stdout.write(f"agreement with the served model: {report.agreement_with_served:.0%}")
        for problem in report.problems:
            self.stdout.write(self.style.ERROR(f"problem   {problem}"))
        if report.ok:
            self.stdout.write(self.style.SUCCESS("OK: loads, runs and matches its manifest."))
