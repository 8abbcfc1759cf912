"""Settings for the panel, read from the environment (see .env.example).

Every setting has a safe development default; production sets DJANGO_DEBUG=false and
must then provide a secret key and allowed hosts, or start-up fails with a clear message.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")

_debug = env.str("DJANGO_DEBUG", default="true").strip().lower()
if _debug not in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
    raise ImproperlyConfigured(f"DJANGO_DEBUG must be true or false, not {_debug!r}.")
DEBUG = _debug in {"true", "1", "yes", "on"}
# Under DEBUG a missing page is the panel's own 404 (smmpanel.middleware); true shows Django's.
PANEL_DEBUG_TECHNICAL_404 = env.bool("PANEL_DEBUG_TECHNICAL_404", default=False)

_DEV_SECRET = "dev-only-insecure-secret-key-change-me-0123456789abcdefghijklmnop"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET if DEBUG else "")
if not SECRET_KEY or (not DEBUG and SECRET_KEY == _DEV_SECRET):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to a long random value in production.")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tables2",
    "django_filters",
    "bootstrap",
    "js_lib_bootstrap_icons",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "simple_history",
    "smmpanel",
    "siteconf",
    "accounts",
    "currencies",
    "providers",
    "catalog",
    "wallets",
    "webhooks",
    "orders",
    "api",
    "support",
    "content",
    "panel",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before CommonMiddleware: the language of the request (cookie, browser).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.TimezoneMiddleware",
    # The language kept on a signed-in customer's account wins over the cookie (other devices).
    "accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.StaffMFAMiddleware",
    "accounts.middleware.ImpersonationMiddleware",
    "smmpanel.middleware.SecurityHeadersMiddleware",
    "smmpanel.middleware.DebugNotFoundMiddleware",
]

ROOT_URLCONF = "smmpanel.urls"
WSGI_APPLICATION = "smmpanel.wsgi.application"

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
                "panel.context_processors.panel",
                "panel.currency_context.display_currency",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
# Embedded default: SQLite in var/. Production and CI: DATABASE_URL=postgres://...
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, beat) share the file: take the write lock at BEGIN
    # so concurrent transactions wait instead of failing on a lock upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # The hot lookups (kernel.db.hot_cursor) are prepared on their first use on a connection;
    # Django's own cursors bind on the client and never prepare. Off for a pooler that loses
    # prepared statements (PgBouncer in transaction mode before 1.21, or without
    # max_prepared_statements).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        0 if env.bool("DATABASE_PREPARED_STATEMENTS", default=True) else None
    )
    if not env.bool("DATABASE_JIT", default=False):
        # PostgreSQL's JIT compiles the dashboard's month-long aggregates for longer than they
        # run (EXPLAIN ANALYZE: 227 ms of JIT in a 1.1 s query at 1,000,000 orders); the
        # panel's statements are short, so it is off for its connections.
        _options = DATABASES["default"].setdefault("OPTIONS", {})
        _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits, login throttling) -----------------------------------------------
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # An unreachable Redis is an empty cache, not a failed request (smmpanel/cache.py).
    CACHES["default"]["BACKEND"] = "kernel.cache.ForgivingRedisCache"
    CACHES["default"].setdefault("OPTIONS", {}).update({"socket_connect_timeout": 2, "socket_timeout": 2})

# --- Auth -----------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"email", "username"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# The verification mode is the Owner's choice in the admin (panel configuration), read by
# accounts/adapter.py on every sign-up and log-in; this is only allauth's fallback.
ACCOUNT_EMAIL_VERIFICATION = "optional"
ACCOUNT_EMAIL_SUBJECT_PREFIX = env.str("ACCOUNT_EMAIL_SUBJECT_PREFIX", default="")
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
# Failed logins are limited per client address and per account, whichever of its names was
# typed (accounts/adapter.py); an unknown name is counted by itself, so a known and an
# unknown account get the same answer (no account enumeration).
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip,5/5m/key"}
# How many proxies in front of the panel append to X-Forwarded-For. 0: the header is
# ignored and the address is the connection's. Every rate limit (logins, the API) takes the
# client address from allauth's adapter, which reads this.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more.")
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT
ACCOUNT_PREVENT_ENUMERATION = True
# Two-factor authentication: authenticator apps (TOTP) with recovery codes.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
# The authenticator app names the panel as configured in the admin (accounts/adapter.py).
MFA_ADAPTER = "accounts.adapter.MFAAdapter"
# Staff must use two-factor authentication to open the admin (accounts.middleware).
STAFF_REQUIRE_MFA = env.bool("STAFF_REQUIRE_MFA", default=not DEBUG)

# --- Internationalisation -------------------------------------------------------------
# Each language is named in its own language (the switcher shows these names as they are).
# Adding one: append it here, run `make messages`, translate locale/<code>/LC_MESSAGES/django.po.
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", "English"),
    ("es", "Español"),
    ("pt-br", "Português (Brasil)"),
    ("tr", "Türkçe"),
    ("ru", "Русский"),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files: served by WhiteNoise; Bootstrap comes from a Python package ------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- E-mail ---------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="panel@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = [("Staff", a) for a in env.list("DJANGO_ADMIN_EMAILS", default=[])]
# The 500 report mailed to ADMINS hides API keys, passwords and tokens wherever the
# request carried them (query string, form or JSON body), not only on decorated views.
DEFAULT_EXCEPTION_REPORTER = "kernel.errors.ScrubbingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "kernel.errors.ScrubbingExceptionReporterFilter"

# --- Security -------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Celery ---------------------------------------------------------------------------
# Embedded default: kombu's filesystem transport (no server). Production: redis:// or amqp://.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    # The transport needs its folders before the first message; every process may be first.
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport, reusing its Redis client for publishing (kernel/broker.py).
    CELERY_BROKER_TRANSPORT = "kernel.broker:Transport"
elif CELERY_BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://")):
    # RabbitMQ as Celery recommends it for tasks that must not be lost: durable queues and
    # persistent messages (kombu's defaults, stated here), and publisher confirms, so a publish
    # returns only once the broker has taken the message (a refused or unconfirmed publish
    # raises and the sweeper re-sends the order from the database). Classic durable queues, not
    # quorum ones: a countdown (retry backoff) on a quorum queue goes through Celery's delayed-
    # delivery exchanges, which this panel does not need since the database holds every retry.
    # Acknowledgement stays per task as docs/DESIGN.md says: submission early, sync late.
    # A reply the broker never sends (a channel's qos or a publish's confirm after a reconnect)
    # must not block a process forever: a synchronous wait blocks the worker's event loop,
    # which then sends no heartbeats and takes no tasks, while the messages it had prefetched
    # wait with it. py-amqp's socket timeouts end such a wait with an error after
    # CELERY_BROKER_READ_TIMEOUT seconds, and the worker reconnects (a publish gives up and
    # the sweeper re-sends).
    _broker_io_timeout = env.int("CELERY_BROKER_READ_TIMEOUT", default=30)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "confirm_publish": True,
        "read_timeout": _broker_io_timeout,
        "write_timeout": _broker_io_timeout,
    }
    CELERY_TASK_DEFAULT_QUEUE_TYPE = "classic"
    CELERY_TASK_DEFAULT_DELIVERY_MODE = "persistent"
    CELERY_BROKER_HEARTBEAT = env.int("CELERY_BROKER_HEARTBEAT", default=60)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=180)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes the database connections before and after every task unless
# this is set, so each submitted order started and ended a PostgreSQL backend. Connections
# are reused instead and aged out like the web server's (smmpanel/celery.py).
CELERY_DB_REUSE_MAX = 2**31

# --- The panel ------------------------------------------------------------------------
# The panel's name, logo, base currency, sign-up and the other business settings are edited
# in the admin (siteconf); the environment keeps secrets and infrastructure only.
# The panel's public address: every link in an e-mail (password reset, confirmation, ticket
# answers) is built from it, never from the request's Host header.
PANEL_BASE_URL = env.str("PANEL_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
_base = urlsplit(PANEL_BASE_URL)
if _base.scheme not in {"http", "https"} or not _base.hostname or _base.query or _base.fragment:
    raise ImproperlyConfigured(
        f"PANEL_BASE_URL must be an http(s) address such as https://panel.example, not {PANEL_BASE_URL!r}."
    )
# Provider URLs that resolve to loopback/private addresses are refused unless this is on
# (development: the provider simulator listens on 127.0.0.1).
PROVIDERS_ALLOW_PRIVATE_URLS = env.bool("PROVIDERS_ALLOW_PRIVATE_URLS", default=DEBUG)
PROVIDER_CONNECT_TIMEOUT = env.float("PROVIDER_CONNECT_TIMEOUT", default=5.0)
PROVIDER_READ_TIMEOUT = env.float("PROVIDER_READ_TIMEOUT", default=30.0)
PROVIDER_MAX_RESPONSE_BYTES = env.int("PROVIDER_MAX_RESPONSE_BYTES", default=20 * 1024 * 1024)
PROVIDER_SYNC_INTERVAL_MINUTES = env.int("PROVIDER_SYNC_INTERVAL_MINUTES", default=60)
# Keyed hash for API keys; defaults to a value derived from SECRET_KEY.
API_KEY_PEPPER = env.str("API_KEY_PEPPER", default="")

SIMULATOR_URL = env.str("SIMULATOR_URL", default="http://127.0.0.1:8900/api/v2")
SIMULATOR_KEY = env.str("SIMULATOR_KEY", default="demo-provider-key")

for _name, _value in (
    ("PROVIDER_CONNECT_TIMEOUT", PROVIDER_CONNECT_TIMEOUT),
    ("PROVIDER_READ_TIMEOUT", PROVIDER_READ_TIMEOUT),
    ("PROVIDER_MAX_RESPONSE_BYTES", PROVIDER_MAX_RESPONSE_BYTES),
):
    if _value <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive.")

DEFAULT_MARKUP_PERCENT = Decimal(env.str("DEFAULT_MARKUP_PERCENT", default="30"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_keys": {"()": "kernel.redact.RedactKeyFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact_keys"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # runserver's access log: through the redacting handler, so `key=` never shows.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # A wrong Host header, too many fields, a body too large: the client's fault, answered
        # 400 and logged here, not mailed to staff (anyone could fill their inbox).
        "django.security": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
ACCOUNT_ADAPTER = "panel.adapter.PanelAccountAdapter"

# --- Periodic work (celery beat); every task has soft and hard time limits ------------------
CELERY_BEAT_SCHEDULE = {
    "providers-sync-services": {
        "task": "catalog.tasks.providers_sync_all",
        "schedule": PROVIDER_SYNC_INTERVAL_MINUTES * 60.0,
    },
    "providers-refresh-balances": {"task": "providers.tasks.providers_refresh_balances", "schedule": 600.0},
    "wallets-ledger-audit": {"task": "wallets.tasks.ledger_audit_daily", "schedule": 24 * 3600.0},
    "wallets-payments-reconcile": {"task": "wallets.tasks.payments_reconcile_daily", "schedule": 24 * 3600.0},
    "wallets-payments-sweep-pending": {"task": "wallets.tasks.payments_sweep_pending_task", "schedule": 300.0},
    # The staff dashboard's chart: the finished days, so that no view counts a month of orders.
    "panel-dashboard-refresh": {"task": "panel.tasks.dashboard_refresh_task", "schedule": 300.0},
}

# --- Display currencies: rates from a source (currencies/sources.py reads Open Exchange Rates'
# latest.json, Frankfurter/exchangerate.host JSON and the ECB's eurofxref-daily.xml) --------
# Empty: rates are only set by hand. `make run` points it at the local simulator (port 8912).
CURRENCY_RATES_URL = env.str("CURRENCY_RATES_URL", default="")
CURRENCY_RATES_API_KEY = env.str("CURRENCY_RATES_API_KEY", default="")
# The query parameter the key travels in: app_id (Open Exchange Rates), access_key (exchangerate.host).
CURRENCY_RATES_API_KEY_PARAM = env.str("CURRENCY_RATES_API_KEY_PARAM", default="app_id")
CURRENCY_RATES_ALLOW_PRIVATE_URL = env.bool("CURRENCY_RATES_ALLOW_PRIVATE_URL", default=DEBUG)
CURRENCY_RATES_CONNECT_TIMEOUT = env.float("CURRENCY_RATES_CONNECT_TIMEOUT", default=5.0)
CURRENCY_RATES_READ_TIMEOUT = env.float("CURRENCY_RATES_READ_TIMEOUT", default=15.0)
CURRENCY_RATES_REFRESH_MINUTES = env.int("CURRENCY_RATES_REFRESH_MINUTES", default=60)
# A rate moving more than this from the current one is held for staff review.
CURRENCY_RATES_MAX_JUMP_PERCENT = Decimal(env.str("CURRENCY_RATES_MAX_JUMP_PERCENT", default="20"))
# An automatic rate older than this is stale: pages show the panel's currency, payments are refused.
CURRENCY_RATES_STALE_HOURS = env.float("CURRENCY_RATES_STALE_HOURS", default=48.0)
for _name, _value in (
    ("CURRENCY_RATES_CONNECT_TIMEOUT", CURRENCY_RATES_CONNECT_TIMEOUT),
    ("CURRENCY_RATES_READ_TIMEOUT", CURRENCY_RATES_READ_TIMEOUT),
    ("CURRENCY_RATES_REFRESH_MINUTES", CURRENCY_RATES_REFRESH_MINUTES),
    ("CURRENCY_RATES_MAX_JUMP_PERCENT", CURRENCY_RATES_MAX_JUMP_PERCENT),
    ("CURRENCY_RATES_STALE_HOURS", CURRENCY_RATES_STALE_HOURS),
):
    if _value <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive.")
CELERY_BEAT_SCHEDULE["currencies-rates-refresh"] = {
    "task": "currencies.tasks.rates_refresh_task",
    "schedule": CURRENCY_RATES_REFRESH_MINUTES * 60.0,
}

# --- Wallets: gateway secrets ------------------------------------------------------------
# Which gateways are offered, their names, deposit limits and fees are set in the admin
# (Gateway settings); the affiliate percentage and the manual-transfer text in the panel
# configuration. Secrets live only here: a gateway without its secrets stays off.
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
# PayPal Checkout (Orders API v2): the sandbox unless set; https://api-m.paypal.com live.
# `make run` points these at the local simulator with demo credentials.
PAYPAL_API_URL = env.str("PAYPAL_API_URL", default="https://api-m.sandbox.paypal.com")
PAYPAL_CLIENT_ID = env.str("PAYPAL_CLIENT_ID", default="")
PAYPAL_CLIENT_SECRET = env.str("PAYPAL_CLIENT_SECRET", default="")
PAYPAL_WEBHOOK_ID = env.str("PAYPAL_WEBHOOK_ID", default="")
PAYPAL_ALLOW_PRIVATE_URLS = env.bool("PAYPAL_ALLOW_PRIVATE_URLS", default=DEBUG)
# The currency the PayPal account is paid in when it is not the panel's currency (e.g. EUR): each
# payment is quoted at the currencies app's rate when created, and credited at that rate.
PAYPAL_CURRENCY = env.str("PAYPAL_CURRENCY", default="").upper()
# While debugging, NOWPayments defaults to the local simulator (`make run` starts it on
# port 8901) with its demo keys; in production it is off until both secrets are set.
NOWPAYMENTS_API_URL = env.str(
    "NOWPAYMENTS_API_URL", default="http://127.0.0.1:8901/v1" if DEBUG else "https://api.nowpayments.io/v1"
)
NOWPAYMENTS_API_KEY = env.str("NOWPAYMENTS_API_KEY", default="demo-nowpayments-api-key" if DEBUG else "")
NOWPAYMENTS_IPN_SECRET = env.str("NOWPAYMENTS_IPN_SECRET", default="demo-nowpayments-ipn-secret" if DEBUG else "")
# Optional: NOWPayments lists an account's payments (for reconciliation) only to a token
# made from the account's e-mail and password.
NOWPAYMENTS_EMAIL = env.str("NOWPAYMENTS_EMAIL", default="")
NOWPAYMENTS_PASSWORD = env.str("NOWPAYMENTS_PASSWORD", default="")
# BTCPay Server (Greenfield API): the server's address, the store, an API key with the
# invoice permissions and the store webhook's secret. All four set, or the gateway stays off.
# `make run` sets them to the local simulator's (Procfile).
BTCPAY_URL = env.str("BTCPAY_URL", default="").rstrip("/")
BTCPAY_STORE_ID = env.str("BTCPAY_STORE_ID", default="")
BTCPAY_API_KEY = env.str("BTCPAY_API_KEY", default="")
BTCPAY_WEBHOOK_SECRET = env.str("BTCPAY_WEBHOOK_SECRET", default="")
# A self-hosted server on the panel's own network (or the local simulator) has a private address.
BTCPAY_ALLOW_PRIVATE_URL = env.bool("BTCPAY_ALLOW_PRIVATE_URL", default=DEBUG)
BTCPAY_TIMEOUT_SECONDS = env.float("BTCPAY_TIMEOUT_SECONDS", default=15.0)

# --- Orders: submission, sweeping and status sync (orders/tasks.py) -------------------------
# An order left in `sending` this long (a worker died mid-call) becomes `unknown` for staff.
# Hosted payments still pending are asked about after this long, and failed as abandoned
# after that long (a payment arriving later is still credited).
WALLET_PENDING_ASK_AFTER_MINUTES = env.int("WALLET_PENDING_ASK_AFTER_MINUTES", default=15)
WALLET_PENDING_ABANDON_HOURS = env.int("WALLET_PENDING_ABANDON_HOURS", default=24)
ORDERS_SENDING_TIMEOUT_SECONDS = env.int("ORDERS_SENDING_TIMEOUT_SECONDS", default=600)
# Backoff for orders that surely never reached the provider: base × 2^(attempt-1), capped.
ORDERS_RETRY_BASE_SECONDS = env.int("ORDERS_RETRY_BASE_SECONDS", default=15)
ORDERS_RETRY_MAX_SECONDS = env.int("ORDERS_RETRY_MAX_SECONDS", default=900)
ORDERS_PAUSED_RETRY_SECONDS = env.int("ORDERS_PAUSED_RETRY_SECONDS", default=300)
# An order our balance at its provider cannot pay for waits alone: base × 2^(attempt-1), capped.
ORDERS_FUNDS_RETRY_SECONDS = env.int("ORDERS_FUNDS_RETRY_SECONDS", default=300)
ORDERS_FUNDS_RETRY_MAX_SECONDS = env.int("ORDERS_FUNDS_RETRY_MAX_SECONDS", default=3600)
# A refill or cancel the provider refused is not forwarded again for this long.
ORDERS_REFUSED_REQUEST_COOLDOWN_HOURS = env.int("ORDERS_REFUSED_REQUEST_COOLDOWN_HOURS", default=24)
ORDERS_SWEEP_BATCH = env.int("ORDERS_SWEEP_BATCH", default=500)
ORDERS_SWEEP_LEASE_SECONDS = env.int("ORDERS_SWEEP_LEASE_SECONDS", default=300)
ORDERS_SYNC_MAX_CHUNKS_PER_PROVIDER = env.int("ORDERS_SYNC_MAX_CHUNKS_PER_PROVIDER", default=20)
ORDERS_SYNC_MIN_INTERVAL_SECONDS = env.int("ORDERS_SYNC_MIN_INTERVAL_SECONDS", default=60)
# Optional dedicated queues; empty means Celery's default queue, so one worker runs it all.
ORDERS_SUBMIT_QUEUE = env.str("ORDERS_SUBMIT_QUEUE", default="")
ORDERS_SYNC_QUEUE = env.str("ORDERS_SYNC_QUEUE", default="")
for _name, _value in (
    ("ORDERS_SENDING_TIMEOUT_SECONDS", ORDERS_SENDING_TIMEOUT_SECONDS),
    ("ORDERS_RETRY_BASE_SECONDS", ORDERS_RETRY_BASE_SECONDS),
    ("ORDERS_FUNDS_RETRY_SECONDS", ORDERS_FUNDS_RETRY_SECONDS),
    ("ORDERS_FUNDS_RETRY_MAX_SECONDS", ORDERS_FUNDS_RETRY_MAX_SECONDS),
    ("ORDERS_SWEEP_BATCH", ORDERS_SWEEP_BATCH),
    ("ORDERS_SYNC_MAX_CHUNKS_PER_PROVIDER", ORDERS_SYNC_MAX_CHUNKS_PER_PROVIDER),
):
    if _value <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive.")
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {}
for _task in ("orders.tasks.order_submit_task", "orders.tasks.refill_submit_task", "orders.tasks.cancel_submit_task"):
    if ORDERS_SUBMIT_QUEUE:
        CELERY_TASK_ROUTES[_task] = {"queue": ORDERS_SUBMIT_QUEUE}
for _task in ("orders.tasks.order_sync_chunk_task", "orders.tasks.refill_sync_chunk_task"):
    if ORDERS_SYNC_QUEUE:
        CELERY_TASK_ROUTES[_task] = {"queue": ORDERS_SYNC_QUEUE}
CELERY_BEAT_SCHEDULE.update(
    {
        "orders-sweep": {"task": "orders.tasks.orders_sweep_task", "schedule": 60.0},
        "orders-sync": {"task": "orders.tasks.orders_sync_dispatch_task", "schedule": 60.0},
        "orders-refills-sync": {"task": "orders.tasks.refills_sync_dispatch_task", "schedule": 300.0},
    }
)

# --- Measured quality (catalog/quality.py) ----------------------------------------------
# Figures cover the last QUALITY_WINDOW_DAYS days; a service or route shows them (and an ETA)
# once QUALITY_MIN_SAMPLE orders were measured. The summaries are refreshed every minute.
QUALITY_WINDOW_DAYS = env.int("QUALITY_WINDOW_DAYS", default=30)
QUALITY_MIN_SAMPLE = env.int("QUALITY_MIN_SAMPLE", default=10)
if QUALITY_WINDOW_DAYS <= 0 or QUALITY_MIN_SAMPLE <= 0:
    raise ImproperlyConfigured("QUALITY_WINDOW_DAYS and QUALITY_MIN_SAMPLE must be positive.")
CELERY_BEAT_SCHEDULE["catalog-quality-refresh"] = {"task": "catalog.tasks.quality_refresh_task", "schedule": 60.0}
# --- Webhooks to customers (webhooks/): Standard Webhooks signatures, retried with backoff ----
# Receiver URLs on loopback/private networks are refused unless this is on (development:
# the receiver simulator listens on 127.0.0.1).
WEBHOOKS_ALLOW_PRIVATE_URLS = env.bool("WEBHOOKS_ALLOW_PRIVATE_URLS", default=DEBUG)
# Signing secrets are stored encrypted with a key derived from this (else from SECRET_KEY).
WEBHOOKS_SECRET_KEY = env.str("WEBHOOKS_SECRET_KEY", default="")
WEBHOOKS_CONNECT_TIMEOUT = env.float("WEBHOOKS_CONNECT_TIMEOUT", default=5.0)
WEBHOOKS_READ_TIMEOUT = env.float("WEBHOOKS_READ_TIMEOUT", default=10.0)
WEBHOOKS_MAX_RESPONSE_BYTES = env.int("WEBHOOKS_MAX_RESPONSE_BYTES", default=64 * 1024)
# Retry after base × 2^(attempt-1) seconds (capped, with jitter) until this many hours after the event.
WEBHOOKS_RETRY_BASE_SECONDS = env.float("WEBHOOKS_RETRY_BASE_SECONDS", default=30.0)
WEBHOOKS_RETRY_MAX_SECONDS = env.float("WEBHOOKS_RETRY_MAX_SECONDS", default=3600.0)
WEBHOOKS_GIVE_UP_HOURS = env.float("WEBHOOKS_GIVE_UP_HOURS", default=25.0)
WEBHOOKS_COUNTDOWN_MAX_SECONDS = env.float("WEBHOOKS_COUNTDOWN_MAX_SECONDS", default=300.0)
WEBHOOKS_ROTATION_OVERLAP_HOURS = env.float("WEBHOOKS_ROTATION_OVERLAP_HOURS", default=24.0)
WEBHOOKS_AUTO_DISABLE = env.bool("WEBHOOKS_AUTO_DISABLE", default=True)
WEBHOOKS_SWEEP_BATCH = env.int("WEBHOOKS_SWEEP_BATCH", default=500)
# The sweep re-sends an event only once it is this late: a due event normally has its message
# queued already (at commit, or with its retry's countdown), and behind a busy queue a
# re-send every minute would only pile up duplicates.
WEBHOOKS_SWEEP_GRACE_SECONDS = env.float("WEBHOOKS_SWEEP_GRACE_SECONDS", default=120.0)
WEBHOOKS_REPLAY_RATE = env.str("WEBHOOKS_REPLAY_RATE", default="10/m")
# Optional dedicated queue for deliveries, so a slow receiver never holds order workers.
WEBHOOKS_QUEUE = env.str("WEBHOOKS_QUEUE", default="")
# While the order-submission queue holds this many waiting messages, a delivery waits (at
# most WEBHOOKS_YIELD_MAX_SECONDS) so that orders go first; only with WEBHOOKS_QUEUE set. 0: never.
WEBHOOKS_YIELD_BACKLOG = env.int("WEBHOOKS_YIELD_BACKLOG", default=100)
WEBHOOKS_YIELD_MAX_SECONDS = env.float("WEBHOOKS_YIELD_MAX_SECONDS", default=10.0)
if WEBHOOKS_YIELD_BACKLOG < 0 or WEBHOOKS_YIELD_MAX_SECONDS < 0:
    raise ImproperlyConfigured("WEBHOOKS_YIELD_BACKLOG and WEBHOOKS_YIELD_MAX_SECONDS cannot be negative.")
for _name, _value in (
    ("WEBHOOKS_CONNECT_TIMEOUT", WEBHOOKS_CONNECT_TIMEOUT),
    ("WEBHOOKS_READ_TIMEOUT", WEBHOOKS_READ_TIMEOUT),
    ("WEBHOOKS_MAX_RESPONSE_BYTES", WEBHOOKS_MAX_RESPONSE_BYTES),
    ("WEBHOOKS_RETRY_BASE_SECONDS", WEBHOOKS_RETRY_BASE_SECONDS),
    ("WEBHOOKS_RETRY_MAX_SECONDS", WEBHOOKS_RETRY_MAX_SECONDS),
    ("WEBHOOKS_SWEEP_BATCH", WEBHOOKS_SWEEP_BATCH),
    ("WEBHOOKS_SWEEP_GRACE_SECONDS", WEBHOOKS_SWEEP_GRACE_SECONDS),
):
    if _value <= 0:
        raise ImproperlyConfigured(f"{_name} must be positive.")
if WEBHOOKS_GIVE_UP_HOURS < 24:
    raise ImproperlyConfigured("WEBHOOKS_GIVE_UP_HOURS must be at least 24: customers are promised a day of retries.")
if WEBHOOKS_CONNECT_TIMEOUT + WEBHOOKS_READ_TIMEOUT + WEBHOOKS_YIELD_MAX_SECONDS > 80:
    raise ImproperlyConfigured(
        "WEBHOOKS_CONNECT_TIMEOUT + WEBHOOKS_READ_TIMEOUT + WEBHOOKS_YIELD_MAX_SECONDS must stay under 80 seconds."
    )
if WEBHOOKS_QUEUE:
    for _task in ("webhooks.tasks.webhook_deliver_task", "webhooks.tasks.webhook_replay_task"):
        CELERY_TASK_ROUTES[_task] = {"queue": WEBHOOKS_QUEUE}
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {"task": "webhooks.tasks.webhooks_sweep_task", "schedule": 60.0}

# --- Our own API v2 ---------------------------------------------------------------------
API_RATE_LIMIT_PER_KEY = env.str("API_RATE_LIMIT_PER_KEY", default="1200/m")
API_RATE_LIMIT_INVALID_KEY = env.str("API_RATE_LIMIT_INVALID_KEY", default="30/m")
if "API_TRUST_X_FORWARDED_FOR" in env:
    raise ImproperlyConfigured(
        "API_TRUST_X_FORWARDED_FOR is replaced by TRUSTED_PROXY_COUNT (the number of proxies in front of the panel)."
    )
RATELIMIT_USE_CACHE = "default"
