"""Settings for the release registry.

This is the only module that reads the environment. Every variable goes through a small helper
that validates it and fails at start with ``ImproperlyConfigured`` naming the variable, so a typo
in production is a refused start, not a subtle misbehaviour.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use true or false")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={value} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    raw = os.environ.get(name, default)
    parts = urlsplit(raw)
    if parts.scheme not in schemes:
        raise ImproperlyConfigured(f"{name}={raw!r} must be a URL with one of the schemes {', '.join(schemes)}")
    return raw


_NAMESPACE_RE = re.compile(r"^(?P<host>[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?)(/[a-z0-9]+([._-][a-z0-9]+)*)+$")


def env_registry_namespace(name: str, default: str) -> str:
    raw = os.environ.get(name, default).rstrip("/")
    if not _NAMESPACE_RE.match(raw):
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a registry namespace; use host[:port]/path, for example ghcr.io/stianfro/threek8s"
        )
    return raw


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required unless DEBUG=true; set it to a long random string")
    SECRET_KEY = "insecure-development-key-only-for-debug-mode-0123456789abcdefghijklmnop"


def env_fernet_keys(name: str) -> list[str]:
    keys = env_list(name, [])
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"{name}: key {position} is not a Fernet key (32 url-safe base64-encoded bytes); make one with "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None
    return keys


# Keys encrypting secret values at rest: the first encrypts, all decrypt (rotation: add the new key
# first, run `manage.py reencrypt_secrets`, remove the old one). Without it, storing or reading a
# secret value fails naming this variable; only DEBUG derives one from SECRET_KEY.
FIELD_ENCRYPTION_KEYS = env_fernet_keys("FIELD_ENCRYPTION_KEYS")
if not FIELD_ENCRYPTION_KEYS and DEBUG:
    _derived = hashlib.sha256(f"field-encryption:{SECRET_KEY}".encode()).digest()
    FIELD_ENCRYPTION_KEYS = [base64.urlsafe_b64encode(_derived).decode()]

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "releases.apps.RegistryAdminConfig",  # django.contrib.admin with the control room as its index
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files: /api/docs/ works offline
    "django_celery_beat",
    "django_fsm",
    "releases",
]

MIDDLEWARE = [
    "releases.http.limits.RequestBodyLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin, API docs) from STATIC_ROOT after `collectstatic`, compressed and cached
    # forever under hashed names: no separate file server behind the TLS proxy.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "registry.urls"

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
            # The control room's tags live with the admin (releases/admin/templatetags), not at
            # the app's root where Django would look for them.
            "libraries": {
                "audit_findings": "releases.admin.templatetags.audit_findings",
                "signing_keys": "releases.admin.templatetags.signing_keys",
            },
        },
    },
]

WSGI_APPLICATION = "registry.wsgi.application"
ASGI_APPLICATION = "registry.asgi.application"

DATABASE_URL = env_url(
    "DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}", ("sqlite", "postgres", "postgresql")
)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The quick start's web server and worker share the file: wait for locks, take them up front.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    # Django leaves psycopg's prepared statements off (None: poolers in transaction mode lose them).
    # Django's cursors bind on the client and never prepare whatever this says; the admission and
    # verify lookups (releases.trust.records) run on a server-binding cursor that asks to prepare,
    # which psycopg honours only when this is set. Prepared statements are planned once per
    # connection only with a generic plan, which PostgreSQL's own choice passes over for those
    # lookups (it guesses 200 rows for a digest looked up in the GIN index, where there is one):
    # forced. It concerns prepared statements alone (those lookups, and PL/pgSQL's: the triggers'
    # lookups by primary key), never Django's queries.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options.setdefault("prepare_threshold", 5)
    _options["options"] = f"{_options.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Compressed copies written by `collectstatic`; no manifest, so a page renders before it ran.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Production hardening; `manage.py check --deploy` is clean when DEBUG is off.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

API_READS_PUBLIC = env_bool("API_READS_PUBLIC", True)

# Denial-of-service limits. Request bodies are counted as they are read (also chunked ones), because
# DRF reads the stream itself and DATA_UPLOAD_MAX_MEMORY_SIZE only covers forms.
REQUEST_BODY_MAX_BYTES = env_int("REQUEST_BODY_MAX_BYTES", 1024 * 1024, minimum=1024)
CHANGELOG_MAX_BYTES = env_int("CHANGELOG_MAX_BYTES", 256 * 1024, minimum=1024)
CHANGELOG_RANGE_MAX_RELEASES = env_int("CHANGELOG_RANGE_MAX_RELEASES", 100, minimum=1)

REST_FRAMEWORK = {
    "DEFAULT_PAGINATION_CLASS": "releases.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "releases.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["releases.api.auth.ReadOrWriteToken"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # ?format= is ours (changelog markdown/html/json), not DRF's renderer override.
    "URL_FORMAT_OVERRIDE": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Release registry API",
    "DESCRIPTION": "Releases, their multi-arch images and Helm charts, changelogs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ReleaseStateEnum": "releases.choices.ReleaseState",
        "ImageStateEnum": "releases.choices.ImageState",
        "ChartStateEnum": "releases.choices.ChartState",
    },
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "release-registry"}}

# Celery: Redis is the broker. The quick start runs tasks in-process when no broker is set.
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "memory"))
CELERY_RESULT_BACKEND = env_url("CELERY_RESULT_BACKEND", CELERY_BROKER_URL, ("redis", "rediss", "cache"))
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker waits out a broker outage of any length (retrying every 2-30 s, logging each attempt, the
# readiness probe naming Redis) instead of exiting after 100 attempts (~50 minutes), and one started
# before Redis waits for it.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# One queue per kind of work, so each can have workers of its own (`celery -A registry worker -Q
# builds`): image builds hold a Docker engine for minutes, audits the registry, and neither may
# delay the other or the short orchestration steps left on `default`. `bin/run` consumes them all.
WORK_QUEUES = ("default", "builds", "charts", "audits")
CELERY_TASK_DEFAULT_QUEUE = "default"
# Declared, so a worker started without -Q consumes every queue rather than `default` alone.
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in WORK_QUEUES]
CELERY_TASK_ROUTES = {
    "releases.tasks.build_image": {"queue": "builds"},
    "releases.tasks.publish_chart": {"queue": "charts"},
    "releases.tasks.audit_published_tags": {"queue": "audits"},
    "releases.tasks.audit_shard": {"queue": "audits"},
    "releases.tasks.audit_finished": {"queue": "audits"},
    "releases.tasks.audit_failed": {"queue": "audits"},
}

# The release domain.
REGISTRY_NAMESPACE = env_registry_namespace("REGISTRY_NAMESPACE", "ghcr.io/stianfro/threek8s")
REGISTRY_USERNAME = env_str("REGISTRY_USERNAME")
REGISTRY_PASSWORD = env_str("REGISTRY_PASSWORD")
REGISTRY_INSECURE_HOSTS = env_list("REGISTRY_INSECURE_HOSTS", [])
# A registry that rate-limits (429/503 with Retry-After) is waited for up to this many seconds per
# request; a longer wait ends the attempt (the task retries later). Uploads go in chunks of this size
# when a registry refuses monolithic ones (or always, with REGISTRY_CHUNKED_UPLOAD=true).
REGISTRY_MAX_RETRY_AFTER = env_int("REGISTRY_MAX_RETRY_AFTER", 60, minimum=1)
REGISTRY_CHUNKED_UPLOAD = env_bool("REGISTRY_CHUNKED_UPLOAD", False)
REGISTRY_UPLOAD_CHUNK_BYTES = env_int("REGISTRY_UPLOAD_CHUNK_BYTES", 8 * 1024 * 1024, minimum=64 * 1024)
SOURCE_REPOSITORY_URL = env_str("SOURCE_REPOSITORY_URL", "")
# Seconds one read of the source repository may take while a request waits on it (a release tag's
# commit, the release commit's subject for pr_number): GitHub gives a webhook 10 s.
SOURCE_READ_TIMEOUT = env_int("SOURCE_READ_TIMEOUT", 8, minimum=1)
DOCKER_HOST = env_str("DOCKER_HOST", "unix:///var/run/docker.sock")
IMAGE_PLATFORMS = env_list("IMAGE_PLATFORMS", ["linux/amd64", "linux/arm64"])
IMAGE_SIZE_BUDGET_BYTES = env_int("IMAGE_SIZE_BUDGET_BYTES", 1024 * 1024 * 1024, minimum=1)
IMAGE_SCAN_FAIL_SEVERITY = env_str("IMAGE_SCAN_FAIL_SEVERITY", "high")
if IMAGE_SCAN_FAIL_SEVERITY not in {"low", "medium", "high", "critical"}:
    raise ImproperlyConfigured(
        f"IMAGE_SCAN_FAIL_SEVERITY={IMAGE_SCAN_FAIL_SEVERITY!r} must be one of low, medium, high, critical"
    )
IMAGE_SCANNER_COMMAND = env_str("IMAGE_SCANNER_COMMAND", "")


def env_mapping(name: str) -> dict[str, str]:
    pairs = env_list(name, [])
    mapping = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ImproperlyConfigured(f"{name} must be comma-separated KEY=VALUE pairs, not {pair!r}")
        mapping[key.strip()] = value.strip()
    return mapping


IMAGE_BUILD_ARGS = env_mapping("IMAGE_BUILD_ARGS")
BUILD_WORKDIR = Path(env_str("BUILD_WORKDIR", str(BASE_DIR / "var" / "builds")))
# Layers compressed by one export and kept for the next (by diff_id, checked before use): a release
# whose base and dependency layers did not change does not gzip them again. 0 turns the cache off.
# Unset: BUILD_WORKDIR/layer-cache.
_layer_cache_dir = env_str("LAYER_CACHE_DIR")
LAYER_CACHE_DIR = Path(_layer_cache_dir) if _layer_cache_dir else None
LAYER_CACHE_MAX_BYTES = env_int("LAYER_CACHE_MAX_BYTES", 2 * 1024**3, minimum=0)

# Builds run through BuildKit, driven by the engine's own docker CLI (Debian's docker.io 20.10:
# DOCKER_BUILDKIT=1 drives the engine's BuildKit; the docker 28 CLI without buildx cannot).
BUILDKIT_DOCKER_CLI = env_str("BUILDKIT_DOCKER_CLI", "/usr/bin/docker")
# The network RUN steps get: none, host or default (the engine's bridge). Unset: follow the engine
# (none when it has no bridge network, where BuildKit would fail every RUN with "network bridge not
# found").
BUILD_NETWORK = env_str("BUILD_NETWORK", "") or None
if BUILD_NETWORK not in (None, "none", "host", "default"):
    raise ImproperlyConfigured(f"BUILD_NETWORK={BUILD_NETWORK!r} must be none, host or default (or unset)")
# Build both platforms of an image at once on its engine (true) or one after the other (false):
# at once was 0.66x the wall clock here (bench/real_builds.py), arm64 under qemu beside amd64.
BUILD_PLATFORMS_AT_ONCE = env_bool("BUILD_PLATFORMS_AT_ONCE", True)
# Seconds one platform's build may take before it is stopped (and the image fails, naming the step).
BUILD_TIMEOUT_SECONDS = env_int("BUILD_TIMEOUT_SECONDS", 1800, minimum=10)


def env_build_secrets(name: str) -> dict:
    """``id=/absolute/file`` or ``id=env:VARIABLE`` pairs: what ``RUN --mount=type=secret,id=`` reads."""
    from releases.imagebuild.buildkit import BuildSecret

    secrets: dict[str, BuildSecret] = {}
    problems = []
    for secret_id, source in env_mapping(name).items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", secret_id):
            problems.append(f"secret id {secret_id!r} may only use letters, digits, '_', '.' and '-'")
        elif source.startswith("env:"):
            value = os.environ.get(source[4:])
            if not value:
                problems.append(f"secret {secret_id}: the environment variable {source[4:]} is unset or empty")
            else:
                secrets[secret_id] = BuildSecret(secret_id, value=value)
        elif source.startswith("/"):
            try:
                secrets[secret_id] = BuildSecret(secret_id, file=Path(source), value=Path(source).read_text().strip())
            except OSError as error:
                problems.append(f"secret {secret_id}: cannot read {source} ({error.strerror})")
        else:
            problems.append(f"secret {secret_id}: give an absolute file path or env:VARIABLE, not {source!r}")
    if problems:
        raise ImproperlyConfigured(f"{name}: " + "; ".join(problems))
    return secrets


BUILD_SECRETS = env_build_secrets("BUILD_SECRETS")

CHART_NAME = env_str("CHART_NAME", "threek8s")
CHART_PATH = env_str("CHART_PATH", "chart/")
# Images a chart may deploy from outside REGISTRY_NAMESPACE without a warning: globs matched against
# the reference as written and its fully qualified form (busybox:1.36 is docker.io/library/busybox:1.36).
CHART_ALLOWED_IMAGES = env_list("CHART_ALLOWED_IMAGES", [])

# Deploy-time trust (releases.trust): the admission webhooks and verify.
# The bearer token the Kubernetes API server sends to /admission/ (a kubeconfig's token for the
# webhook); unset, every admission review is refused (401).
ADMISSION_TOKEN = env_str("ADMISSION_TOKEN", "") or ""
if ADMISSION_TOKEN and len(ADMISSION_TOKEN) < 16:
    raise ImproperlyConfigured("ADMISSION_TOKEN must be at least 16 characters; generate a long random one")
# Images a cluster may run from outside REGISTRY_NAMESPACE: globs matched as written and fully
# qualified, like CHART_ALLOWED_IMAGES (registry.k8s.io/pause:*, docker.io/library/busybox:*).
ADMISSION_ALLOWED_IMAGES = env_list("ADMISSION_ALLOWED_IMAGES", [])
# Namespaces (globs; * for all) whose refusals are answered allowed with warnings instead.
ADMISSION_WARN_NAMESPACES = env_list("ADMISSION_WARN_NAMESPACES", [])
# Namespaces (globs; * for every one the mutating webhook is called for) where /admission/mutate/
# pins our tags to tag@digest; elsewhere it answers allowed with no patch.
ADMISSION_PIN_NAMESPACES = env_list("ADMISSION_PIN_NAMESPACES", [])
# References one POST /api/v1/verify/ may ask about at once.
VERIFY_BATCH_MAX = env_int("VERIFY_BATCH_MAX", 200, minimum=1)


def env_host_patterns(name: str) -> list[str]:
    entries = env_list(name, [])
    if not entries:
        return entries
    from releases.charts.hosts import HostPattern

    try:
        return [str(HostPattern.parse(entry)) for entry in entries]
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: {error}") from None


# The hosts chart dependencies may be fetched from (host, host:port, *.suffix); any other is refused.
# Unset, only hosts that resolve to public addresses are, besides the registry of REGISTRY_NAMESPACE
# and REGISTRY_INSECURE_HOSTS: commit authors must not make the worker request its own network.
CHART_DEPENDENCY_HOSTS = env_host_patterns("CHART_DEPENDENCY_HOSTS")
HELM_BIN = env_str("HELM_BIN", "") or shutil.which("helm") or str(BASE_DIR / ".tools" / "bin" / "helm")
KUBERNETES_VERSION = env_str("KUBERNETES_VERSION", "1.31.0")
CHART_REPOSITORY_URL = env_str("CHART_REPOSITORY_URL", "")
GITHUB_WEBHOOK_SECRET = env_str("GITHUB_WEBHOOK_SECRET", "")
PUBLISH_ON_WEBHOOK = env_bool("PUBLISH_ON_WEBHOOK", True)
# The one repository whose signed events are acted on (a leaked or shared secret must not let
# another repository's releases be built). Required with the webhook secret.
GITHUB_REPOSITORY = env_str("GITHUB_REPOSITORY", "").strip()
_GITHUB_REPOSITORY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")
if GITHUB_REPOSITORY and not _GITHUB_REPOSITORY_RE.fullmatch(GITHUB_REPOSITORY):
    raise ImproperlyConfigured(
        f"GITHUB_REPOSITORY={GITHUB_REPOSITORY!r} is not a GitHub repository; use owner/name, e.g. stianfro/threek8s"
    )
if GITHUB_WEBHOOK_SECRET and not GITHUB_REPOSITORY:
    raise ImproperlyConfigured(
        "GITHUB_REPOSITORY is required with GITHUB_WEBHOOK_SECRET; set it to the owner/name whose events are built"
    )


# Signing (cosign's scheme): every pushed index, platform manifest and chart manifest is signed with
# SIGNING_KEY (an ECDSA P-256 PEM: PKCS#8, plain or encrypted, or cosign's encrypted format) before
# its version tag is put, and each platform image gets a signed SLSA provenance attestation. The
# audit verifies with the signing key's public half and TRUSTED_SIGNING_KEYS (public PEMs of
# rotated-out keys, so older releases still verify). Keys are read here, so a wrong path, a
# non-P-256 key or a wrong password stops the start.
def env_signing_key(name: str, password_name: str):
    path = env_str(name, "")
    password = env_str(password_name, "") or None
    if not path:
        return "", password, None
    from releases.signing import SigningError, load_private_key

    try:
        pem = Path(path).read_bytes()
    except OSError as error:
        raise ImproperlyConfigured(
            f"{name}={path!r} cannot be read ({error.strerror}); point it at the PEM private key"
        ) from None
    try:
        return path, password, load_private_key(pem, password)
    except SigningError as error:
        raise ImproperlyConfigured(f"{name}={path!r}: {error} (password from {password_name})") from None


def env_public_keys(name: str) -> list[bytes]:
    from releases.signing import SigningError, load_public_key

    keys = []
    for path in env_list(name, []):
        try:
            pem = Path(path).read_bytes()
            load_public_key(pem)
        except OSError as error:
            raise ImproperlyConfigured(
                f"{name}: {path!r} cannot be read ({error.strerror}); list public key files"
            ) from None
        except SigningError as error:
            raise ImproperlyConfigured(f"{name}: {path!r}: {error}") from None
        keys.append(pem)
    return keys


SIGNING_KEY, SIGNING_KEY_PASSWORD, SIGNING_PRIVATE_KEY = env_signing_key("SIGNING_KEY", "SIGNING_KEY_PASSWORD")
TRUSTED_SIGNING_KEYS = env_list("TRUSTED_SIGNING_KEYS", [])
TRUSTED_PUBLIC_KEYS = env_public_keys("TRUSTED_SIGNING_KEYS")
PROVENANCE_BUILDER_ID = env_url(
    "PROVENANCE_BUILDER_ID", "https://github.com/stianfro/threek8s/release-registry", ("https", "http")
)

# Tag-immutability audits.
AUDIT_INTERVAL_MINUTES = env_int("AUDIT_INTERVAL_MINUTES", 15, minimum=1)
AUDIT_CONCURRENCY = env_int("AUDIT_CONCURRENCY", 16, minimum=1)
# A run is split into batches of this many tags, checked in parallel by the `audits` workers.
AUDIT_BATCH_SIZE = env_int("AUDIT_BATCH_SIZE", 1000, minimum=1)
# Every run checks that each signature and attestation tag exists (one tags/list per repository);
# their content is read again in one run of this many (1: every run).
AUDIT_SIGNATURE_RECHECK_RUNS = env_int("AUDIT_SIGNATURE_RECHECK_RUNS", 4, minimum=1)
AUDIT_WEBHOOK_URL = env_url("AUDIT_WEBHOOK_URL", "", ("https", "http")) if env_str("AUDIT_WEBHOOK_URL") else ""
AUDIT_WEBHOOK_SECRET = env_str("AUDIT_WEBHOOK_SECRET", "")
if AUDIT_WEBHOOK_URL and not AUDIT_WEBHOOK_SECRET:
    # Receivers must be able to tell our calls from forged ones: never send unsigned.
    raise ImproperlyConfigured(
        "AUDIT_WEBHOOK_SECRET is required with AUDIT_WEBHOOK_URL; set it to a long random string the receiver knows"
    )
ADMINS = [("Admin", address) for address in env_list("ADMIN_EMAILS", [])]
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
# SMTP once a mail server is configured; until then mails go to the log.
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend",
)
SERVER_EMAIL = env_str("SERVER_EMAIL", "release-registry@localhost")
DEFAULT_FROM_EMAIL = SERVER_EMAIL

# Stuck work. Every task has a soft time limit per kind (the row ends failed naming the limit) and a
# hard one TIME_LIMIT_GRACE_SECONDS later (the worker process is killed; the errbacks and the
# sweeper settle the row). The sweeper re-enqueues active work with no progress for
# STALLED_AFTER_MINUTES, STALLED_REQUEUE_LIMIT times without a state change, then fails it.
BUILD_TIME_LIMIT_SECONDS = env_int("BUILD_TIME_LIMIT_SECONDS", 3600, minimum=1)
CHART_TIME_LIMIT_SECONDS = env_int("CHART_TIME_LIMIT_SECONDS", 900, minimum=1)
ORCHESTRATION_TIME_LIMIT_SECONDS = env_int("ORCHESTRATION_TIME_LIMIT_SECONDS", 300, minimum=1)
AUDIT_TIME_LIMIT_SECONDS = env_int("AUDIT_TIME_LIMIT_SECONDS", 1800, minimum=1)
TIME_LIMIT_GRACE_SECONDS = env_int("TIME_LIMIT_GRACE_SECONDS", 60, minimum=1)
SWEEP_INTERVAL_MINUTES = env_int("SWEEP_INTERVAL_MINUTES", 5, minimum=1)
STALLED_AFTER_MINUTES = env_int("STALLED_AFTER_MINUTES", 30, minimum=1)
STALLED_REQUEUE_LIMIT = env_int("STALLED_REQUEUE_LIMIT", 2, minimum=0)
# A task whose worker died unacknowledged is delivered again after CELERY_VISIBILITY_TIMEOUT seconds
# (Redis broker). One still running by then would be delivered to a second worker as well, so the
# default outlasts the longest hard time limit; `manage.py check` warns about a shorter one.
LONGEST_HARD_LIMIT_SECONDS = TIME_LIMIT_GRACE_SECONDS + max(
    BUILD_TIME_LIMIT_SECONDS, CHART_TIME_LIMIT_SECONDS, ORCHESTRATION_TIME_LIMIT_SECONDS, AUDIT_TIME_LIMIT_SECONDS
)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", LONGEST_HARD_LIMIT_SECONDS + 300, minimum=1),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 60, minimum=1),
}


# Operations. Readiness (/api/v1/health/ready/) checks PostgreSQL, the broker and the registry, and
# the Docker engine where HEALTH_CHECK_ENGINE is on (build workers' `manage.py ready` probe).
HEALTH_CHECK_ENGINE = env_bool("HEALTH_CHECK_ENGINE", False)
HEALTH_CHECK_TIMEOUT_SECONDS = env_int("HEALTH_CHECK_TIMEOUT_SECONDS", 3, minimum=1)
# prometheus-client reads this variable itself (at import) to write per-process metric files; it is
# validated here so a missing directory refuses the start instead of failing the first scrape.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", "")
if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(
        f"PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_MULTIPROC_DIR!r} is not a directory; create it (empty) before "
        "starting gunicorn and the workers, and empty it at each deployment"
    )
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").strip().upper()
if LOG_LEVEL not in LOG_LEVELS:
    raise ImproperlyConfigured(f"LOG_LEVEL={LOG_LEVEL!r} must be one of {', '.join(LOG_LEVELS)}")
LOG_FORMAT = env_str("LOG_FORMAT", "text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} must be text or json (JSON lines, for log shippers)")
# Libraries that log every request at INFO; quiet unless LOG_LEVEL=DEBUG.
CHATTY_LOGGERS = ("httpx", "httpcore", "urllib3", "docker", "kombu", "amqp")


# What a worker must never show: configured secret values and credentials in URLs (scrubbed from
# failure reasons, progress, build logs, labels and log lines), and its own directories (shown as
# short labels). Keep this block last: it reads the secrets defined above.
def _url_secrets(url: str) -> list[str]:
    parts = urlsplit(url or "")
    return [value for value in (parts.password, parts.username if parts.password is None else None) if value]


SCRUBBED_SECRETS = tuple(
    value
    for value in (
        SECRET_KEY,
        REGISTRY_PASSWORD,
        DATABASES["default"].get("PASSWORD"),
        GITHUB_WEBHOOK_SECRET,
        AUDIT_WEBHOOK_SECRET,
        SIGNING_KEY_PASSWORD,
        ADMISSION_TOKEN,
        *FIELD_ENCRYPTION_KEYS,
        EMAIL_HOST_PASSWORD,
        *_url_secrets(CELERY_BROKER_URL),
        *_url_secrets(SOURCE_REPOSITORY_URL),
        *(secret.value for secret in BUILD_SECRETS.values()),
    )
    if value
)
SCRUBBED_PATHS = {str(BUILD_WORKDIR.resolve()): "<build dir>", str(BASE_DIR): "<service dir>"}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "releases.observability.logcontext.ContextFilter"},
        "scrub": {
            "()": "releases.observability.redaction.ScrubbingFilter",
            "secrets": SCRUBBED_SECRETS,
            "paths": SCRUBBED_PATHS,
        },
    },
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [task=%(task_id)s %(context)s] %(message)s"},
        "json": {"()": "releases.observability.logcontext.JsonLinesFormatter"},
    },
    # Every handler scrubs (and adds the task and subject): keep both filters on any handler added.
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["context", "scrub"], "formatter": LOG_FORMAT}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {name: {"level": "DEBUG" if LOG_LEVEL == "DEBUG" else "WARNING"} for name in CHATTY_LOGGERS},
}
