#!/bin/sh
# Writes the body-size limit from the app's own upload settings, then starts nginx.
# The app refuses a request body above MAX_REQUEST_BYTES (default: MAX_UPLOAD_BYTES *
# MAX_FILES_PER_REQUEST + DATA_UPLOAD_MAX_MEMORY_SIZE, as in galaxysite/settings/base.py); nginx
# refuses the same bodies with 413 before buffering them.
set -eu
upload=${MAX_UPLOAD_BYTES:-10485760}
files=${MAX_FILES_PER_REQUEST:-32}
form=${DATA_UPLOAD_MAX_MEMORY_SIZE:-2621440}
request=${MAX_REQUEST_BYTES:-$((upload * files + form))}
echo "client_max_body_size $request;" > /run/nginx/body-size.conf
exec "$@"
