#!/usr/bin/env bash
# Runs the web server and, beside it, the background processes of the product; stopping this
# script (Ctrl-C) stops them all.
set -euo pipefail
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
trap 'kill 0' EXIT INT TERM
exec_server() { "$PY" manage.py runserver "$HOST:$PORT"; }
exec_server
