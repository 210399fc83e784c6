"""Count the SQL statements of one-image POST /api/predictions/ through the app's own stack.

Run as a subprocess by bench/upload_cpu.py, with the environment and working directory of
the gunicorn it measured (same settings, same database): Django's test client sends the same
multipart upload through every middleware, DRF's authentication and throttle and the view,
and CaptureQueriesContext records every statement on the default connection (the database
cache, sessions, axes and the audit row all use it). The first upload warms the process up
and is not counted. Prints JSON: statements per upload and the statements of the last one.

    python bench/_sql_count.py APP_DIR IMAGE_DIR UPLOADS
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> None:
    app_dir, folder, uploads = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    sys.path.insert(0, str(app_dir))
    os.chdir(app_dir)
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    paths = sorted(folder.glob("*.jpg"))
    client = Client(HTTP_ACCEPT="application/json", SERVER_NAME="127.0.0.1")
    counts, statuses, last = [], [], []
    for index in range(uploads + 1):
        with paths[-1 - index].open("rb") as handle, CaptureQueriesContext(connection) as queries:
            response = client.post("/api/predictions/", {"image": handle})
        if index:
            counts.append(len(queries.captured_queries))
            statuses.append(response.status_code)
            last = [query["sql"] for query in queries.captured_queries]
    json.dump({"counts": counts, "statuses": statuses, "statements": last}, sys.stdout)


if __name__ == "__main__":
    main()
