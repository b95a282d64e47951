"""Test settings: the real settings with fast, deterministic, offline parts swapped in."""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 20)
os.environ.setdefault("DEBUG", "false")
# No .env: a developer's (written by `make run`, DEBUG=true) must not change what the tests see;
# subprocesses the tests start inherit this too.
os.environ["LEADCHAT_ENV_FILE"] = ""
os.environ.pop("LEADCHAT_RUN_URL", None)

from leadchat.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# live_server serves unhashed names; the manifest storage would 404 them.
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
PUBLIC_BASE_URL = "http://testserver"
PUBLIC_BASE_URL_SET = True  # as a deployment sets it: no leadchat.W001 in test subprocesses
# Every fake receiver and agent the tests start listens on loopback; the tests of the address
# policy itself turn this off (leadchat/tests/test_outbound.py).
OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
# No test reaches a real resolver: email checks skip DNS unless a test starts a DNS server on
# loopback and points LEAD_EMAIL_DNS_NAMESERVERS at it (leadchat/testing_dns.py).
LEAD_EMAIL_DNS_CHECK = False
LEAD_EMAIL_DNS_NAMESERVERS = []
# No daily QA digest from the workers the tests run (they count the emails they cause, and the
# wall clock is past 07:00 most of the day); qa/tests/test_digest.py sets an hour.
QA_DIGEST_HOUR = None
LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}  # noqa: F405
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not :memory:, so worker subprocesses started by the tests see the same database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}  # noqa: F405
