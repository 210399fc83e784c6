"""ASGI entry point. The model is loaded lazily on first use, never here."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "galaxysite.settings")

application = get_asgi_application()
