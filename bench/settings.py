"""Settings of the benchmark: the product's own settings plus the floor view's URLconf.

Only `make bench` uses this module (the floor server and the in-process reads). The product is
measured with `leadchat.settings` unchanged; nothing here is reachable from the product's URLs.
"""

from leadchat.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
# The Django test client (reads measured in-process) sends Host: testserver.
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405
