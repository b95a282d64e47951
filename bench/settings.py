"""Settings of the benchmark: the product's own settings plus the floor view's URLconf.

Only `make bench` uses this module (the floor server and the in-process reads). The product is
measured with `leadchat.settings` unchanged; nothing here is reachable from the product's URLs.
"""

from leadchat.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
# The Django test client (reads measured in-process) sends Host: testserver.
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405
# A measurement not merged yet answers 404, once per run: no log line per 404. Errors still log.
LOGGING = {
    **LOGGING,  # noqa: F405
    "loggers": {**LOGGING["loggers"], "django.request": {"level": "ERROR"}},  # noqa: F405
}
