from django.apps import AppConfig


class ClassifierConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "classifier"
    verbose_name = "Galaxy classifier"

    def ready(self) -> None:
        # Only signal receivers; the model itself loads lazily on first use.
        from classifier import inference  # noqa: F401
