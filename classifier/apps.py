from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClassifierConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "classifier"
    # The site's name, as the pages' header spells it (and the catalog translates it).
    verbose_name = _("Galaxy Classifier")

    def ready(self) -> None:
        # Only signal receivers; the model itself loads lazily on first use.
        from classifier.predictions import inference  # noqa: F401
