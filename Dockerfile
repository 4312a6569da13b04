# syntax=docker/dockerfile:1
#
# Production image for the helpdesk API.
#
#   docker build -t helpdesk .
#   docker run -p 8000:8000 \
#     -e DATABASE_URL=postgresql://... -e HELPDESK_SIGNING_KEYS='{"k1":"..."}' -e HELPDESK_SIGNING_KEY_ID=k1 \
#     helpdesk
#
# HELPDESK_ENV=production makes the app refuse to start without a real database and its own
# signing key (no embedded PostgreSQL, no development key).
#
# Both stages use the same base image on purpose: the venv's interpreter is a symlink to the
# base image's /usr/local/bin/python3.11, so the venv is only valid on an identical Python.

# ---------------------------------------------------------------------------------------------
# Stage 1: build the project and its dependencies into a self-contained virtualenv.
# ---------------------------------------------------------------------------------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src

# Only what the wheel is built from (tests/, bench/ and CI files stay out of the image).
# One COPY per package: `COPY a b ./` would flatten the directories' contents into ./
COPY pyproject.toml README.md ./
COPY helpdesk/ helpdesk/
COPY tenants/ tenants/
COPY auth/ auth/
COPY audit/ audit/
COPY migrations/ migrations/

# A regular (non-editable) install: the venv holds the built wheel, /src is not needed later.
# Versions come from pyproject.toml's ranges; pin them with a lock/constraints file if needed.
RUN pip install --no-cache-dir .

# ---------------------------------------------------------------------------------------------
# Stage 2: runtime. No compilers, no sources, no build tools beyond what pip left in the venv.
# ---------------------------------------------------------------------------------------------
FROM python:3.11-slim

# Fixed uid/gid so volume ownership and Kubernetes securityContext (runAsUser: 10001) are stable.
# --no-log-init: avoids a huge sparse /var/log/faillog entry for a high uid (hadolint DL3046).
RUN groupadd --system --gid 10001 helpdesk \
    && useradd --system --uid 10001 --gid helpdesk --no-log-init \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin helpdesk

COPY --from=build /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HELPDESK_ENV=production

# Root-owned and read-only for the app user: production keeps no state on local disk.
WORKDIR /app

EXPOSE 8000

# The helpdesk user, by number: Kubernetes' runAsNonRoot can only verify a numeric USER, and a
# numeric id needs no /etc/passwd lookup (hadolint DL3066).
USER 10001:10001

# slim has no curl/wget: probe with the interpreter we already ship. urlopen raises (exit 1)
# on connection errors, timeouts and non-2xx answers. The port is the one CMD passes; if you
# override --port, override the healthcheck too (or use your orchestrator's probes).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# Two worker processes (one per core you give the container; override the whole CMD to change
# it). Pool sizes and rate limits apply per worker process, and each runs the scheduled jobs
# (escalation, auto-close, delivery, retention) unless `--no-worker` is added; the jobs' advisory
# locks keep the two from working one workspace at once. On SIGTERM (docker stop, Kubernetes)
# the server stops accepting and lets in-flight requests finish for up to
# HELPDESK_SHUTDOWN_GRACE_SECONDS (20): give the runtime a longer bound before it kills
# (`docker stop --time 30`; Kubernetes' terminationGracePeriodSeconds is 30 by default).
STOPSIGNAL SIGTERM
ENTRYPOINT ["helpdesk", "serve"]
CMD ["--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
