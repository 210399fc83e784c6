"""Settings for the Galaxy Classifier, read from the environment (django-environ).

DJANGO_SETTINGS_MODULE=galaxysite.settings names this package. Every variable is documented
in .env.example; the defaults are production-safe: DEBUG is off, SECRET_KEY must be provided,
cookies are secure and HTTPS is enforced unless the environment says otherwise. Each setting
is defined once, in the module of its concern:

- base: Django itself (secret, hosts, apps, middleware, database, cache, accounts, files, the model)
- security: HTTPS, proxies, cookies, Content-Security-Policy, Permissions-Policy
- api: Django REST framework and the OpenAPI schema
- jobs: Celery, classification jobs and the cutouts of positions
- operations: logs, metrics, the model roll-out folder, backups

galaxysite/test_settings.py is these for the test suite.
"""

from galaxysite.settings.api import *  # noqa: F403
from galaxysite.settings.base import *  # noqa: F403
from galaxysite.settings.jobs import *  # noqa: F403
from galaxysite.settings.operations import *  # noqa: F403
from galaxysite.settings.security import *  # noqa: F403
