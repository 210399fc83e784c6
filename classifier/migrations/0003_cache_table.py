"""The database cache's table, made by `migrate` itself.

The rate limits count in the default cache, which is the database's unless CACHE_URL names
another (galaxysite/settings.py). Creating its table here means every deployment that runs
`migrate` has it, instead of depending on a separate `createcachetable` step.
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps, schema_editor):
    # Creates only the tables of database caches that do not exist yet; nothing for Redis.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("classifier", "0002_jobs")]

    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop, elidable=True)]
