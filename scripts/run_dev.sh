#!/usr/bin/env bash
# Runs the web server and, beside it, the background processes of the product. Stopping this
# script (Ctrl-C or SIGTERM) stops them all, and so does either one of them exiting.
set -euo pipefail
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
trap 'trap - EXIT INT TERM; kill 0 2>/dev/null || true' EXIT INT TERM
# The delivery worker: sends lead webhooks (LEAD_WEBHOOK_URL or endpoints in the admin) and QA
# emails from the outbox, and marks idle sessions incomplete once a minute. On SIGTERM it
# finishes the send in progress, then exits.
# (--skip-checks: runserver beside it prints the system check warnings once.)
"$PY" manage.py deliver_webhooks --skip-checks &
"$PY" manage.py runserver "$HOST:$PORT" &
# Both run in the background so this shell's traps fire at once (bash defers a trap until a
# foreground child exits); wait -n returns when either process ends.
wait -n
