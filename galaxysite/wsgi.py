"""WSGI entry point. The model is loaded lazily on first use, never here."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "galaxysite.settings")

application = get_wsgi_application()
