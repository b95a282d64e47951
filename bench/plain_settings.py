"""Settings of the plain-Django anchor: the floor's writes with nothing of the product around them.

Issue 17 measures the widget round trip against "a plain Django app doing the same writes with its
best server config". The floor (`bench.settings`) already does the same writes but behind the
product's whole middleware stack and gunicorn config; this anchor keeps only what the writes need:
the models (every app stays installed, since sessions link to sites, users and QA rows), no
middleware, no DRF, one URL. `bench.run` serves it with sync gunicorn workers, one per core plus
one per core again (the config that did best on this machine: 4 sync workers on 2 cores).
"""

from leadchat.settings import *  # noqa: F403

ROOT_URLCONF = "bench.plain_urls"
MIDDLEWARE = []
LOGGING = {
    **LOGGING,  # noqa: F405
    "loggers": {**LOGGING["loggers"], "django.request": {"level": "ERROR"}},  # noqa: F405
}
