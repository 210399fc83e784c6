"""The settings, as DJANGO_SETTINGS_MODULE=galaxysite.settings names them (galaxysite/settings/base.py)."""

from galaxysite.settings.base import *  # noqa: F403
