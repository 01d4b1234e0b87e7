"""Rapport settings: everything comes from environment variables (12-factor).

Development needs nothing set: `make run` / `make test` export DATABASE_URL and REDIS_URL for the
embedded servers. Production sets RAPPORT_ENV=production and must provide SECRET_KEY.
"""

import os
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# Where a development machine keeps its files (the embedded PostgreSQL and Redis, sent mail,
# uploads, collected static files):
# the same variable and default as crm/devservices.py, so one RAPPORT_DATA_DIR moves them all.
DATA_DIR = Path(os.environ.get("RAPPORT_DATA_DIR", BASE_DIR / ".data"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


RAPPORT_ENV = os.environ.get("RAPPORT_ENV", "development")
DEVELOPMENT = RAPPORT_ENV == "development"
DEBUG = env_bool("DEBUG", DEVELOPMENT)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    # The development key is public: with it anyone can forge sessions and candidates' links.
    # A server with DEBUG off is taken for a real one, whatever RAPPORT_ENV says.
    if not DEVELOPMENT or not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when RAPPORT_ENV is not 'development' or DEBUG is off."
        )
    SECRET_KEY = "development-only-insecure-key-do-not-use-in-production"  # noqa: S105

if not DEVELOPMENT and not os.environ.get("SITE_URL"):
    # Invitation, password-reset and unsubscribe links are built from it.
    raise ImproperlyConfigured("SITE_URL must be set when RAPPORT_ENV is not 'development'.")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEVELOPMENT else "")
ALLOWED_HOSTS.append(urlparse(SITE_URL).hostname or "localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS") or [SITE_URL]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "anymail",
    "django_filters",
    "django_htmx",
    "template_partials",
    "csp",
    "crm",
    "candidates",
    "pipelines",
    "campaigns",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Open pixel and click redirect answer here, before sessions, auth and scoping.
    "campaigns.middleware.TrackingFastPathMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "crm.middleware.OrganizationMiddleware",
]

if not DEVELOPMENT:
    # Production serves static files from the web process itself (compressed, cache-busted).
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "crm.urls"
WSGI_APPLICATION = "crm.wsgi.application"
AUTH_USER_MODEL = "crm.User"

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
                "crm.context_processors.organization",
            ],
        },
    },
]

# Stock widgets written in Python, byte-identical to Django's widget templates (crm/renderers.py).
FORM_RENDERER = "crm.renderers.WidgetRenderer"

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. Use `make run` / `make test` (they start an embedded PostgreSQL) "
        "or point DATABASE_URL at a PostgreSQL server."
    )
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
}
# Each test run gets its own database, so that several runs (two developers, or a test run
# beside a benchmark) on one server never drop each other's test database.
DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ.get(
    "TEST_DATABASE_NAME", f"test_{DATABASES['default']['NAME']}_{os.getpid()}"
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "")
if not REDIS_URL:
    raise ImproperlyConfigured(
        "REDIS_URL is not set. Use `make run` / `make test` (they start an embedded Redis) "
        "or point REDIS_URL at a Redis server."
    )
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "rapport"),
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# --- django-allauth -------------------------------------------------------------------------
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "confirm_email": "1/3m/key",
    "reset_password": "20/m/ip,5/m/key",
}
# allauth's rate limits count by client address. Behind a reverse proxy every request comes
# from the proxy's: allauth reads X-Forwarded-For only when told how many proxies to trust, else
# ten failed logins anywhere would lock everybody out. Production sits behind one proxy (TLS,
# docs/operations.md); with no proxy in front, set 0, or clients could pick their own address.
ALLAUTH_TRUSTED_PROXY_COUNT = int(
    os.environ.get("TRUSTED_PROXY_COUNT", "0" if DEVELOPMENT else "1")
)
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Rapport] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = urlparse(SITE_URL).scheme or "https"
ACCOUNT_ADAPTER = "crm.adapters.AccountAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Rapport"
LOGIN_REDIRECT_URL = "home"
LOGIN_URL = "account_login"

# --- email ----------------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Rapport <no-reply@rapport.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.filebased.EmailBackend"
    if DEVELOPMENT
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = DATA_DIR / "mail"
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_")
}
# Campaign email leaves only from a sending domain its organisation verified through DNS
# (campaigns/services/domains.py). `false` for a single-tenant installation whose operator
# trusts every admin with any sender address.
RAPPORT_SENDING_DOMAIN_VERIFICATION = env_bool("RAPPORT_SENDING_DOMAIN_VERIFICATION", True)

# The tracking process (crm/asgi.py): threads per worker that answer the pixel, the click and
# the one-click unsubscribe off the event loop; each keeps its own database connection.
TRACKING_THREADS = int(os.environ.get("TRACKING_THREADS", "4"))

# --- i18n / time ----------------------------------------------------------------------------
LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- static and media -----------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "staticfiles" if DEVELOPMENT else BASE_DIR / "staticfiles"
NODE_MODULES = BASE_DIR / "node_modules"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/bootstrap", NODE_MODULES / "bootstrap" / "dist"),
    ("vendor/bootstrap-icons", NODE_MODULES / "bootstrap-icons" / "font"),
    ("vendor/htmx", NODE_MODULES / "htmx.org" / "dist"),
    ("vendor/chart.js", NODE_MODULES / "chart.js" / "dist"),
    ("vendor/sortablejs", NODE_MODULES / "sortablejs"),
]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", DATA_DIR / "media"))
STORAGES = {
    # Uploaded files (resumes) are private: they are never served from MEDIA_URL, only through
    # views that check membership. Production can use S3-compatible storage (django-storages).
    "default": {
        "BACKEND": os.environ.get("FILE_STORAGE", "django.core.files.storage.FileSystemStorage"),
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEVELOPMENT
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Resumes and other candidate files (candidates/services/attachments.py holds the other limits).
ATTACHMENT_MAX_UPLOAD_BYTES = int(os.environ.get("ATTACHMENT_MAX_UPLOAD_BYTES", 10 * 1024 * 1024))
# The address space of the child process that reads a file's text (decompression bombs).
ATTACHMENT_EXTRACT_MAX_MEMORY_BYTES = int(
    os.environ.get("ATTACHMENT_EXTRACT_MAX_MEMORY_BYTES", 512 * 1024 * 1024)
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Database connections a candidate import writes its batches on, each keeping one of
# PostgreSQL's CPUs busy (candidates/services/imports.py). More helps only with cores to spare.
CANDIDATE_IMPORT_WRITERS = int(os.environ.get("CANDIDATE_IMPORT_WRITERS", "2"))
if CANDIDATE_IMPORT_WRITERS < 1:
    raise ImproperlyConfigured("CANDIDATE_IMPORT_WRITERS must be 1 or more.")

# --- S3-compatible file storage (django-storages) -------------------------------------------
# Used when FILE_STORAGE=storages.backends.s3.S3Storage. Credentials (AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY) are read from the environment by django-storages/boto3 themselves, or
# come from an instance role. Files stay private: a private ACL on every object (an empty
# AWS_DEFAULT_ACL sends none, for AWS buckets with ACLs disabled) and short-lived signed URLs.
AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
AWS_S3_ENDPOINT_URL = os.environ.get("AWS_S3_ENDPOINT_URL") or None
AWS_S3_REGION_NAME = os.environ.get("AWS_S3_REGION_NAME") or None
AWS_S3_ADDRESSING_STYLE = os.environ.get("AWS_S3_ADDRESSING_STYLE") or None
AWS_LOCATION = os.environ.get("AWS_LOCATION", "")
AWS_DEFAULT_ACL = os.environ.get("AWS_DEFAULT_ACL", "private") or None
AWS_S3_SIGNATURE_VERSION = "s3v4"
AWS_QUERYSTRING_AUTH = True
AWS_QUERYSTRING_EXPIRE = 300  # seconds a signed download URL stays valid
AWS_S3_FILE_OVERWRITE = False  # two resumes named cv.pdf must not replace each other
_s3_file_storage = STORAGES["default"]["BACKEND"].startswith("storages.backends.s3")
if _s3_file_storage and not AWS_STORAGE_BUCKET_NAME:
    raise ImproperlyConfigured("FILE_STORAGE is S3 storage but AWS_STORAGE_BUCKET_NAME is not set.")

# --- security -------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if not DEVELOPMENT:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# Content Security Policy (django-csp 4): no inline scripts or styles anywhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "campaigns.*": {"queue": "email"},
    "analytics.*": {"queue": "analytics"},
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = False
# Celery's Django fixup closes the database connection before and after every task unless this
# is set; then it closes it every N tasks. A worker's connection instead follows Django's own
# rules, as a web request's does (crm/celery.py: CONN_MAX_AGE, health checks, errors), and the
# fixup's count is only a backstop. A fresh connection per task cost the send benchmark a
# PostgreSQL backend with cold caches for every chunk of 500 emails.
CELERY_DB_REUSE_MAX = 1000
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "crm.heartbeat",
        "schedule": 30.0,
    },
    "expire-invitations": {
        "task": "crm.purge_expired_invitations",
        "schedule": crontab(minute=17, hour=3),
    },
    "campaigns-dispatch": {
        "task": "campaigns.dispatch",
        "schedule": 60.0,
    },
    # Buffered opens and clicks → EngagementEvents, in batches (campaigns/services/tracking.py).
    "campaigns-tracking-flush": {
        "task": "campaigns.tracking_flush",
        "schedule": 3.0,
    },
    # ESP events that arrived before their email's send was recorded (services/webhooks.py).
    "campaigns-esp-events-retry": {
        "task": "campaigns.esp_events_retry",
        "schedule": 60.0,
    },
    # --- pipelines: follow-up digests and "not now" returns; smart pool re-materialisation ---
    "pipelines-follow-ups": {
        "task": "pipelines.follow_ups_dispatch",
        "schedule": crontab(minute="*/15"),
    },
    "pipelines-smart-pools": {
        "task": "pipelines.smart_pools_refresh_all",
        "schedule": crontab(minute=40),
    },
    # --- candidates: nightly duplicate scan, one queued task per organisation ---
    "candidates-duplicates-scan": {
        "task": "candidates.duplicates_scan_all",
        "schedule": crontab(minute=23, hour=2),
    },
    # --- candidates: imports, bulk actions and exports whose task never came (broker down) ---
    "candidates-jobs-requeue-waiting": {
        "task": "candidates.jobs_requeue_waiting",
        "schedule": 120.0,
    },
    # --- candidates: abandoned import drafts (and their uploaded files) go after a week ---
    "candidates-import-drafts-expire": {
        "task": "candidates.import_drafts_expire",
        "schedule": crontab(minute=47, hour=3),
    },
}
WORKER_HEARTBEAT_MAX_AGE = 120  # seconds; /healthz reports the worker down past this

INVITATION_TTL_DAYS = 7
# Invitation emails (new ones and resends) an organisation, and an admin across organisations,
# may send in a clock hour. Anyone can sign up and create an organisation: without a limit its
# invitation form would send any text in its name to any address, from our domain.
INVITATIONS_PER_HOUR = int(os.environ.get("INVITATIONS_PER_HOUR", "50"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
