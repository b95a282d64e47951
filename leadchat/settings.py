"""leadchat settings, driven entirely by the environment (django-environ).

Every variable is explained in `.env.example`. The defaults are the embedded run: SQLite under
`var/`, the scripted agent, the console email backend, webhooks off until a URL is set. Production
sets DEBUG=false, SECRET_KEY, ALLOWED_HOSTS and DATABASE_URL (see README).
"""

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("LEADCHAT_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
# The git-ignored .env beside manage.py (`make run` writes one for local development, see the
# Makefile), read without overriding the real environment. LEADCHAT_ENV_FILE names another file,
# or none when empty: the test settings set it empty, so a developer's .env never leaks into the
# tests (or hides a missing production setting from them).
ENV_FILE = environ.Env().str("LEADCHAT_ENV_FILE", default=str(BASE_DIR / ".env"))
if ENV_FILE and Path(ENV_FILE).is_file():
    env.read_env(ENV_FILE)

VERSION = "0.1.0"

DEBUG = env.bool("DEBUG", default=False)


def _secret_key() -> str:
    key = env.str("SECRET_KEY", default="")
    if key:
        return key
    if not DEBUG:
        # One line (manage.py prints it as is): what to set, for development and production.
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off. For local development run `make run` "
            "once (it writes a git-ignored .env with DEBUG=true) or set DEBUG=true; in "
            'production set SECRET_KEY (python -c "import secrets; '
            'print(secrets.token_urlsafe(50))").'
        )
    # A development key that survives restarts (so logins survive them too) but never leaves
    # this machine: var/ is git-ignored.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Absolute base URL used in links that leave the request cycle (webhook payloads, emails) and
# in the admin's embed code. Unset, it is where `make run` serves (it exports LEADCHAT_RUN_URL
# from its HOST and PORT), else http://127.0.0.1:8000; a production start without it warns
# (system check leadchat.W001), since every link it hands out would point at loopback.
PUBLIC_BASE_URL_SET = bool(env.str("PUBLIC_BASE_URL", default=""))
LEADCHAT_RUN_URL = env.str("LEADCHAT_RUN_URL", default="")
PUBLIC_BASE_URL = (
    env.str("PUBLIC_BASE_URL", default="") or LEADCHAT_RUN_URL or "http://127.0.0.1:8000"
).rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    # Staff API tokens: hashed at rest, expiring, revoked on password change (accounts.tokens).
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "anymail",
    "accounts",
    "widget",
    "sessions_app",
    "qa",
]

MIDDLEWARE = [
    # First: Meta's webhook and the widget's poll skip what they do not use (leadchat.hotpaths);
    # every other request goes on down this list.
    "leadchat.hotpaths.HotPathMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    # 413/411 for bodies before anything reads them (after CORS, so the widget can read it).
    "leadchat.http.RequestBodyLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "leadchat.middleware.ContentSecurityPolicyMiddleware",
    # Cache-Control: no-store on the dashboard, sign-in pages and the API (not schema/docs).
    "leadchat.middleware.NoStoreMiddleware",
    # Last, so its process_exception sees the view's exception first (JSON 503 on API paths).
    "leadchat.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "leadchat.urls"
WSGI_APPLICATION = "leadchat.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "/dashboard/"
LOGOUT_REDIRECT_URL = "accounts:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            # The dashboard is a subpackage, not an app: its tags are not found by APP_DIRS.
            "libraries": {"dashboard": "sessions_app.dashboard.templatetags"},
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'leadchat.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded run shares one SQLite file between the web server and the delivery worker.
    # WAL lets readers and a writer overlap; IMMEDIATE takes the write lock at BEGIN so two
    # writers queue on the busy timeout instead of failing with "database is locked" on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def cache_from_url(url: str) -> dict:
    """CACHE_URL as Django reads it. django-environ (0.14) lower-cases the base options of
    Django's own Redis backend, so `?key_prefix=leadchat` became "key_prefix", which Django
    ignores: two apps (or two leadchat instances) sharing one Redis then shared their keys,
    rate-limit counters included. They go back where Django reads them."""
    config = env.cache_url_config(url)
    for name in ("TIMEOUT", "KEY_PREFIX", "VERSION", "KEY_FUNCTION"):
        if name.lower() in config:
            config[name] = config.pop(name.lower())
    return config


CACHES = {"default": cache_from_url(env.str("CACHE_URL", default="locmemcache://leadchat"))}
# Redis answers in well under a millisecond; one that takes longer than this is treated as
# down (redis-py's defaults, 5 s and three retries with backoff, would hold every widget request
# that long during an outage). The app fails open without the cache (leadchat.cache_guard).
CACHE_SOCKET_TIMEOUT = env.float("CACHE_SOCKET_TIMEOUT", default=0.5)


def redis_cache_options() -> dict:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_connect_timeout": CACHE_SOCKET_TIMEOUT,
        "socket_timeout": CACHE_SOCKET_TIMEOUT,
        # One immediate retry covers a connection the server closed (restart, idle timeout).
        "retry": Retry(NoBackoff(), 1),
    }


if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    CACHES["default"]["OPTIONS"] = {**redis_cache_options(), **CACHES["default"].get("OPTIONS", {})}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
# The widget's catalogs (widget.i18n): visitors read a site's language, set per site. The
# interface of the dashboard and the admin stays in LANGUAGE_CODE (no LocaleMiddleware).
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
# whitenoise warns on every start while the folder is missing (before the first collectstatic).
STATIC_ROOT.mkdir(exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security ---------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe /health over plain HTTP; a redirect would read as "down".
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^health/ready$"]
# Trusting a proxy is always an explicit choice, off by default: without a proxy in front that
# overwrites them, X-Forwarded-Proto and X-Forwarded-For are whatever the client sent, and
# trusting them would let anyone fake HTTPS or pick a fresh "IP" per request to step around
# every rate limit and the sign-in throttle.
BEHIND_PROXY = env.bool("BEHIND_PROXY", default=False)
if BEHIND_PROXY:
    # Only safe when a proxy we control sets (and strips client-sent) X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many proxies we run in front of the app append to X-Forwarded-For. Rate limits and the
# sign-in throttle take the client IP that many hops from the right (leadchat.http.client_ip);
# 0 (the default) uses the socket address. Set it with BEHIND_PROXY; they are separate because a
# chain of proxies appends more than one hop.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# Default policy for every response that does not set its own (the widget page sets a per-site
# frame-ancestors). Inline styles stay allowed: Bootstrap components and the admin set them.
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
)

# CORS is only ever opened for the public widget API, and only to each site's allowed origins
# (widget.origins.cors_allows_request decides per request); everything else stays same-origin.
CORS_URLS_REGEX = r"^/api/widget/.*$"
CORS_ALLOW_HEADERS = ["content-type", "x-visitor-token"]

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "accounts.tokens.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["leadchat.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "leadchat.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "leadchat API",
    "DESCRIPTION": (
        "Public widget API, staff API, automation error API and transcript ingest API of leadchat."
    ),
    "VERSION": VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The session moves are one URL pattern, documented as one path per move.
    "PREPROCESSING_HOOKS": ["sessions_app.api.schema.one_path_per_session_move"],
    # A stable name for an enum whose field name ("status") many serializers share.
    "ENUM_NAME_OVERRIDES": {"IngestResultStatusEnum": "sessions_app.api.ingest.RESULT_STATUSES"},
    # drf-spectacular's default hook, then the 414 every operation can get from the server.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "leadchat.schema.document_server_answers",
    ],
}

# --- Product settings -------------------------------------------------------------------------
# A session with no lead and no activity for this long is marked incomplete.
SESSION_IDLE_TIMEOUT_MINUTES = env.int("SESSION_IDLE_TIMEOUT_MINUTES", default=30)

# Lead webhooks (n8n). Off until a URL is set; per-site endpoints live in the database.
LEAD_WEBHOOK_URL = env.str("LEAD_WEBHOOK_URL", default="")
LEAD_WEBHOOK_SECRET = env.str("LEAD_WEBHOOK_SECRET", default="")
LEAD_WEBHOOK_AUTH_HEADER = env.str("LEAD_WEBHOOK_AUTH_HEADER", default="")
LEAD_WEBHOOK_AUTH_VALUE = env.str("LEAD_WEBHOOK_AUTH_VALUE", default="")

# n8n's error workflow authenticates with this bearer key; the API is closed while it is empty.
AUTOMATION_API_KEY = env.str("AUTOMATION_API_KEY", default="")
# Bearer key for POST /api/ingest/messages/ (transcripts of conversations n8n runs on other
# channels). A key of its own: the error workflow's key cannot write transcripts. Empty: closed.
INGEST_API_KEY = env.str("INGEST_API_KEY", default="")

# --- Email (QA notifications through Resend) --------------------------------------------------
RESEND_API_KEY = env.str("RESEND_API_KEY", default="")
if RESEND_API_KEY:
    # anymail's Resend backend, plus the Idempotency-Key HTTP header Resend deduplicates on.
    EMAIL_BACKEND = "sessions_app.delivery.resend.EmailBackend"
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
ANYMAIL: dict[str, object] = {
    "RESEND_API_KEY": RESEND_API_KEY,
    "RESEND_API_URL": env.str("RESEND_API_URL", default="https://api.resend.com/"),
}
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="leadchat <leadchat@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
QA_NOTIFY_EMAILS = env.list("QA_NOTIFY_EMAILS", default=[])
# QA sampling (qa.sampling) decides sessions that went quiet within this many days; older ones
# (from before sampling was set up) are never decided and stay in the queue.
QA_SAMPLING_LOOKBACK_DAYS = env.int("QA_SAMPLING_LOOKBACK_DAYS", default=7)
# The daily QA digest (qa.digest) is queued to QA_NOTIFY_EMAILS by the delivery worker once a
# day, at the first pass on or after this hour (0-23, UTC); "off" (or "none") schedules none
# (`manage.py send_qa_digest` from cron still sends it).
QA_DIGEST_HOUR: int | None = (
    None
    if env.str("QA_DIGEST_HOUR", default="7").strip().lower() in {"off", "none", ""}
    else env.int("QA_DIGEST_HOUR", default=7)
)
if QA_DIGEST_HOUR is not None and not 0 <= QA_DIGEST_HOUR <= 23:
    raise ImproperlyConfigured("QA_DIGEST_HOUR must be an hour of the day, 0-23 (UTC), or off.")
# A visitor's request for a person that nobody took within this many minutes is emailed to the
# site's notify list (Site.notify_emails), once (widget.handoff, run by the delivery worker).
HANDOFF_EMAIL_AFTER_MINUTES = env.int("HANDOFF_EMAIL_AFTER_MINUTES", default=3)
# Who is emailed every new lead (the lead, its source page, a link to it); empty: nobody.
LEAD_NOTIFY_EMAILS = env.list("LEAD_NOTIFY_EMAILS", default=[])

# --- Logging ----------------------------------------------------------------------------------
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Lead quality (sessions_app.email_quality) -------------------------------------------------
# Look up a lead's email domain (MX, then A/AAAA) before it is stored; off, an email is only
# checked for syntax, throwaway domains and role addresses. The test settings turn it off.
LEAD_EMAIL_DNS_CHECK = env.bool("LEAD_EMAIL_DNS_CHECK", default=True)
# The whole lookup's budget in seconds (every query and retry): beyond it the email is stored
# as `unverifiable`, never refused, so a slow resolver costs a visitor at most this much.
LEAD_EMAIL_DNS_TIMEOUT = env.float("LEAD_EMAIL_DNS_TIMEOUT", default=1.5)
if not 0 < LEAD_EMAIL_DNS_TIMEOUT <= 5:
    raise ImproperlyConfigured("LEAD_EMAIL_DNS_TIMEOUT must be in (0, 5] seconds.")
# Nameservers to ask, `host` or `host:port` (`[::1]:53` for IPv6), comma separated. Empty: the
# system's resolver (/etc/resolv.conf). The tests point it at a DNS server on loopback.
LEAD_EMAIL_DNS_NAMESERVERS = env.list("LEAD_EMAIL_DNS_NAMESERVERS", default=[])
# How long a domain's answer is kept in the cache (an unverifiable one: 5 minutes).
LEAD_EMAIL_DNS_CACHE_SECONDS = env.int("LEAD_EMAIL_DNS_CACHE_SECONDS", default=86_400)

# --- Widget: public chat API and AI agent backends (widget app) -------------------------------
# Rate limits of the public widget API (429 with Retry-After beyond them). They live in the
# cache, so several processes need a shared CACHE_URL for the limits to hold across them.
WIDGET_SESSIONS_PER_IP_PER_HOUR = env.int("WIDGET_SESSIONS_PER_IP_PER_HOUR", default=30)
# Openings of the chat one IP may have counted per hour (the overview's funnel); beyond, a 429 and
# nothing counted, so a script cannot inflate the figure much.
WIDGET_OPENINGS_PER_IP_PER_HOUR = env.int("WIDGET_OPENINGS_PER_IP_PER_HOUR", default=60)
# The embed script's availability check, once per page view, has a budget of its own.
WIDGET_AVAILABILITY_PER_IP_PER_MINUTE = env.int(
    "WIDGET_AVAILABILITY_PER_IP_PER_MINUTE", default=300
)
WIDGET_MESSAGES_PER_SESSION_PER_MINUTE = env.int(
    "WIDGET_MESSAGES_PER_SESSION_PER_MINUTE", default=20
)
WIDGET_REQUESTS_PER_IP_PER_MINUTE = env.int("WIDGET_REQUESTS_PER_IP_PER_MINUTE", default=120)
# Live updates (issue 14): an open widget, and the dashboard's session page, poll for new
# messages every LIVE_POLL_MS (an agent's reply shows within about that). Polls have their own
# budgets, apart from the ones above.
LIVE_POLL_MS = env.int("LIVE_POLL_MS", default=2000)
if not 500 <= LIVE_POLL_MS <= 2500:
    raise ImproperlyConfigured("LIVE_POLL_MS must be in [500, 2500] (replies show within 3 s).")
# The shorter middleware stack for the webhook and the poll (leadchat.hotpaths); off: the full one.
LEAN_HOT_PATHS = env.bool("LEAN_HOT_PATHS", default=True)
WIDGET_POLLS_PER_IP_PER_MINUTE = env.int("WIDGET_POLLS_PER_IP_PER_MINUTE", default=600)
WIDGET_POLLS_PER_SESSION_PER_MINUTE = env.int("WIDGET_POLLS_PER_SESSION_PER_MINUTE", default=120)
# Largest request body the widget API reads (a 4,000-character message in JSON fits easily).
WIDGET_MAX_BODY_BYTES = env.int("WIDGET_MAX_BODY_BYTES", default=32_768)
# Time budget of one agent reply, in seconds: connecting, and the whole reply (both requests of
# a tool call included). Beyond it the visitor gets the fallback reply. At most 25.
WIDGET_AGENT_CONNECT_TIMEOUT = env.float("WIDGET_AGENT_CONNECT_TIMEOUT", default=5.0)
WIDGET_AGENT_TIMEOUT = env.float("WIDGET_AGENT_TIMEOUT", default=20.0)
if not 0 < WIDGET_AGENT_TIMEOUT <= 25 or not 0 < WIDGET_AGENT_CONNECT_TIMEOUT <= 25:
    raise ImproperlyConfigured("WIDGET_AGENT_TIMEOUT and _CONNECT_TIMEOUT must be in (0, 25].")
# How many recent messages an agent backend is shown.
WIDGET_AGENT_HISTORY_MESSAGES = env.int("WIDGET_AGENT_HISTORY_MESSAGES", default=30)
# Agent calls running at once per process (the bulkhead, widget.bulkhead). Beyond it a visitor's
# message is stored and answered with the fallback at once, so a hanging agent can hold at most
# this many of gunicorn's GUNICORN_THREADS (32) and the rest keep serving /health and visitors.
WIDGET_AGENT_MAX_CONCURRENT = env.int("WIDGET_AGENT_MAX_CONCURRENT", default=8)
if WIDGET_AGENT_MAX_CONCURRENT < 1:
    raise ImproperlyConfigured("WIDGET_AGENT_MAX_CONCURRENT must be at least 1.")

# --- Facebook Messenger (widget.channels.messenger) -------------------------------------------
# The Meta app's secret: Meta signs every webhook with it (X-Hub-Signature-256). While it is
# empty the webhook is closed (503). The verify token is the one typed into Meta's app dashboard
# when the callback URL is set up (the GET challenge). Sites are matched by their page id.
MESSENGER_APP_SECRET = env.str("MESSENGER_APP_SECRET", default="")
MESSENGER_VERIFY_TOKEN = env.str("MESSENGER_VERIFY_TOKEN", default="")
MESSENGER_GRAPH_API_URL = env.str(
    "MESSENGER_GRAPH_API_URL", default="https://graph.facebook.com/v23.0"
).rstrip("/")
# Largest webhook body taken (Meta batches up to 1,000 events in one POST).
MESSENGER_MAX_BODY_BYTES = env.int("MESSENGER_MAX_BODY_BYTES", default=1_048_576)
# Webhook POSTs per client IP per minute (Meta sends from many addresses; this is a backstop).
MESSENGER_REQUESTS_PER_IP_PER_MINUTE = env.int("MESSENGER_REQUESTS_PER_IP_PER_MINUTE", default=6000)
# How long a worker owns an inbox event while it asks the agent: longer than the agent's budget.
MESSENGER_LEASE_SECONDS = env.int(
    "MESSENGER_LEASE_SECONDS", default=int(WIDGET_AGENT_TIMEOUT * 2 + 30)
)
# Handled inbox events (their raw payloads, PSIDs included) are deleted by the worker this many
# days after they were handled; what a person wrote stays in the transcript. Longer than Meta
# retries a webhook (up to 36 hours), so a late retry still finds its mid and is not stored twice.
MESSENGER_INBOX_RETENTION_DAYS = env.int("MESSENGER_INBOX_RETENTION_DAYS", default=7)

# --- QA replay (qa.replay): a session's visitor turns asked again of the site's current agent ---
# The whole replay's time budget (each agent call is also within WIDGET_AGENT_TIMEOUT) and its
# token budget; past either the replay is recorded as failed, saying which.
REPLAY_TIME_BUDGET_SECONDS = env.float("REPLAY_TIME_BUDGET_SECONDS", default=120.0)
REPLAY_TOKEN_BUDGET = env.int("REPLAY_TOKEN_BUDGET", default=20_000)
# Longer conversations are refused (recorded as failed) rather than replayed in part.
REPLAY_MAX_TURNS = env.int("REPLAY_MAX_TURNS", default=100)
# Replays one worker pass claims (each may take the whole time budget).
REPLAY_BATCH_SIZE = env.int("REPLAY_BATCH_SIZE", default=2)
# How long a worker owns a replay: it must outlast the time budget plus one agent call, or a
# second worker would start the same replay while the first still runs it.
REPLAY_LEASE_SECONDS = env.int(
    "REPLAY_LEASE_SECONDS", default=int(REPLAY_TIME_BUDGET_SECONDS + WIDGET_AGENT_TIMEOUT + 30)
)
if REPLAY_LEASE_SECONDS < REPLAY_TIME_BUDGET_SECONDS + WIDGET_AGENT_TIMEOUT + 5:
    raise ImproperlyConfigured(
        "REPLAY_LEASE_SECONDS must be at least REPLAY_TIME_BUDGET_SECONDS + WIDGET_AGENT_TIMEOUT"
        " + 5: a shorter lease lets a second worker run a replay the first is still running."
    )

# --- Outbound HTTP: webhook receivers and agent backends (leadchat.outbound) ----------------------
# Link-local and cloud-metadata addresses are always refused. Loopback and private ranges
# (RFC 1918, fc00::/7, 100.64.0.0/10) only with this on: an n8n or Ollama on the same host or LAN.
# On by default in the embedded run (DEBUG, `make run`), where n8n on localhost is the usual case.
OUTBOUND_ALLOW_PRIVATE_NETWORKS = env.bool("OUTBOUND_ALLOW_PRIVATE_NETWORKS", default=DEBUG)

# --- Delivery worker: lead webhooks and QA emails (sessions_app.delivery) ---------------------
# Webhook sends: at most this long to connect, and this long in all (connect + answer).
WEBHOOK_CONNECT_TIMEOUT = env.float("WEBHOOK_CONNECT_TIMEOUT", default=5.0)
WEBHOOK_TOTAL_TIMEOUT = env.float("WEBHOOK_TOTAL_TIMEOUT", default=15.0)
# Seconds to wait after each failed attempt; past the last one the delivery is `failed`.
# The default spans about three days: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h.
WEBHOOK_RETRY_SCHEDULE = [
    int(s)
    for s in env.list(
        "WEBHOOK_RETRY_SCHEDULE",
        default=["5", "300", "1800", "7200", "18000", "36000", "50400", "72000", "86400"],
    )
]
# How long a worker owns a row: from the claim until its send starts, then again from the
# start of the send (renewed per row, so a long batch never outlives it). A row is only
# claimed again once its lease ran out, i.e. once its worker must be dead; the system check
# `sessions_app.E001` refuses a lease shorter than a send's hard deadline plus a margin.
DELIVERY_LEASE_SECONDS = env.int("DELIVERY_LEASE_SECONDS", default=120)
# Sends of one row that ended without an outcome (a worker killed mid-send, an exception in
# leadchat itself) after which the row is failed with an automation error.
DELIVERY_MAX_CRASHES = env.int("DELIVERY_MAX_CRASHES", default=3)
# After a secret rotation, sends carry a signature with the new and with the previous secret
# for this long (Standard Webhooks allows several in one header).
WEBHOOK_SECRET_OVERLAP_HOURS = env.float("WEBHOOK_SECRET_OVERLAP_HOURS", default=24.0)
# An endpoint whose every send failed for this many days is switched off (its leads are held)
# and the admins are emailed. 0 turns this off.
WEBHOOK_DISABLE_AFTER_FAILING_DAYS = env.float("WEBHOOK_DISABLE_AFTER_FAILING_DAYS", default=5.0)
DELIVERY_BATCH_SIZE = env.int("DELIVERY_BATCH_SIZE", default=20)
DELIVERY_POLL_SECONDS = env.float("DELIVERY_POLL_SECONDS", default=2.0)
# Sends each worker keeps on the wire at once (threads; 1 sends one row after the other). Each
# thread holds one keep-alive connection per receiver; the database work stays on the worker's
# own connection, in groups.
DELIVERY_CONCURRENCY = env.int("DELIVERY_CONCURRENCY", default=8)
# Resend calls from the worker: 5 s to connect, 15 s to answer (anymail's default is 30 s).
ANYMAIL["REQUESTS_TIMEOUT"] = (WEBHOOK_CONNECT_TIMEOUT, WEBHOOK_TOTAL_TIMEOUT)

# A malformed LEAD_WEBHOOK_SECRET is refused by a system check (sessions_app.E003).
# The automation error and ingest APIs authenticate with bearer keys of their own (documented in
# the schema).
SPECTACULAR_SETTINGS["APPEND_COMPONENTS"] = {
    "securitySchemes": {
        "AutomationBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "AUTOMATION_API_KEY, for POST /api/automation/errors/ only.",
        },
        "IngestBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "INGEST_API_KEY, for POST /api/ingest/messages/ only.",
        },
    }
}

# --- Dashboard, staff API, retention (sessions_app dashboard) ---------------------------------
# Sessions stay in the trash this many days before `purge_sessions` removes them for good.
TRASH_RETENTION_DAYS = env.int("TRASH_RETENTION_DAYS", default=30)
# Sign-in throttling: failed attempts allowed per client IP and per username within the window;
# past either limit every attempt (even with the right password) is refused until it passes.
LOGIN_FAILURES_PER_IP = env.int("LOGIN_FAILURES_PER_IP", default=20)
LOGIN_FAILURES_PER_USERNAME = env.int("LOGIN_FAILURES_PER_USERNAME", default=5)
LOGIN_THROTTLE_WINDOW_SECONDS = env.int("LOGIN_THROTTLE_WINDOW_SECONDS", default=900)
# Staff API tokens (django-rest-knox): stored as SHA-512 digests, valid this many days after
# they are issued (`manage.py create_api_token`), revoked when the user's password changes or the
# account is deactivated. Clients send `Authorization: Token <token>` as before.
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=90)
if not 1 <= API_TOKEN_TTL_DAYS <= 3650:
    raise ImproperlyConfigured("API_TOKEN_TTL_DAYS must be between 1 and 3650.")
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
# How often (milliseconds) the dashboard polls the changes feed while its tab is visible.
DASHBOARD_POLL_MS = env.int("DASHBOARD_POLL_MS", default=3000)
# Password sign-in (dashboard and admin alike) goes through the throttle (accounts.backends).
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]

# --- Readiness and metrics (/health/ready, /metrics; leadchat.readiness) ----------------------
# /health/ready answers 503 when the newest delivery worker heartbeat is older than this, or the
# oldest due delivery has waited longer than READINESS_MAX_DUE_AGE_SECONDS.
READINESS_WORKER_MAX_AGE_SECONDS = env.int("READINESS_WORKER_MAX_AGE_SECONDS", default=120)
READINESS_MAX_DUE_AGE_SECONDS = env.int("READINESS_MAX_DUE_AGE_SECONDS", default=900)
# /metrics is open to staff API tokens (and signed-in staff), and to these client addresses or
# networks (e.g. "10.0.0.5,192.168.0.0/24" for the Prometheus server); empty: tokens only.
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
