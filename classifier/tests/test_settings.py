"""Production settings: safe defaults, and `check --deploy` is clean."""

import ast
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "x" * 20 + "production-like-secret-key-with-enough-entropy-0123456789",
    "DJANGO_ALLOWED_HOSTS": "galaxy.example.org",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://galaxy.example.org",
}


def manage(*args, env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k != "DATABASE_URL"}
    clean["DJANGO_SETTINGS_MODULE"] = "galaxysite.settings"
    clean["DJANGO_ENV_FILE"] = str(ROOT / "no-such.env")
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_deploy_is_clean_with_production_env():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_secret_key_is_required_when_debug_is_off():
    result = manage("check", env={})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_debug_is_off_by_default():
    result = manage(
        "shell", "-c", "from django.conf import settings; print(settings.DEBUG)", env=PRODUCTION_ENV
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


@pytest.mark.parametrize(
    ("url", "engine"),
    [
        # django-prometheus's wrappers of Django's backends (they count queries and errors).
        ("postgres://u@db:5432/galaxy", "django_prometheus.db.backends.postgresql"),
        ("", "django_prometheus.db.backends.sqlite3"),
    ],
)
def test_database_from_url(url, engine):
    env = {**PRODUCTION_ENV, "DATABASE_URL": url} if url else PRODUCTION_ENV
    code = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    result = manage("shell", "-c", code, env=env)
    assert result.stdout.strip().splitlines()[-1] == engine, result.stderr


def _is_setting(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id.isupper() and not node.id.startswith("_")


def settings_written(statements: list[ast.stmt]) -> Counter[str]:
    """How often these statements write each setting; an amendment (``X += ...``,
    ``X[...] = ...``, ``X.update(...)``) counts as a second write. The branches of one ``if``
    are alternatives, not repeats."""
    written: Counter[str] = Counter()
    for statement in statements:
        if isinstance(statement, ast.If):
            branches = [settings_written(statement.body), settings_written(statement.orelse)]
            written.update(
                {name: max(branch[name] for branch in branches) for name in set().union(*branches)}
            )
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if _is_setting(target):
                        written[target.id] += 1
                    elif isinstance(target, ast.Subscript | ast.Attribute) and _is_setting(target.value):
                        written[target.value.id] += 2
            elif isinstance(node, ast.AugAssign) and _is_setting(node.target):
                written[node.target.id] += 2
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and _is_setting(node.func.value)
            ):
                written[node.func.value.id] += 2 * (
                    node.func.attr in ("update", "append", "extend", "setdefault")
                )
    return written


def test_each_setting_is_written_once_in_the_settings_package():
    # What a setting is can be read in one place: no module amends another's, or its own.
    written: Counter[str] = Counter()
    for module in sorted((ROOT / "galaxysite" / "settings").glob("*.py")):
        written.update(settings_written(ast.parse(module.read_text(encoding="utf-8")).body))
    assert {name: count for name, count in written.items() if count > 1} == {}
    assert {"INSTALLED_APPS", "MIDDLEWARE", "LOGGING", "REST_FRAMEWORK", "DATABASES"} <= written.keys()
