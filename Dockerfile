# syntax=docker/dockerfile:1
# Rapport's production image: one image for every role (web, tracking, worker, beat, migrate).
#   docker build -t rapport .
#   docker run ... rapport                                   # gunicorn on :8000 (the default)
#   docker run ... rapport gunicorn crm.asgi:application --worker-class uvicorn_worker.UvicornWorker --bind 0.0.0.0:8000
#                                                            # the tracking endpoints (/e/)
#   docker run ... rapport celery -A crm worker -l info      # a Celery worker
# Configuration comes from environment variables only: see docs/operations.md.

# --- front-end packages: Bootstrap, htmx, Chart.js, SortableJS (package-lock.json) -----------
FROM node:22-slim AS node-packages
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# --- Python dependencies from pyproject.toml, in a virtualenv copied into the final image ------
FROM python:3.12-slim AS python-packages
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY pyproject.toml docker/production_requirements.py /build/
RUN python /build/production_requirements.py /build/pyproject.toml > /build/requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --requirement /build/requirements.txt

# --- the application -------------------------------------------------------------------------
FROM python:3.12-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RAPPORT_ENV=production \
    MEDIA_ROOT=/data/media \
    WEB_CONCURRENCY=3

# The code stays owned by root and read-only for the service user, who writes only to /data
# (uploaded files when FILE_STORAGE is the file system, the beat schedule) and its home
# (gunicorn's control socket).
RUN groupadd --system --gid 10001 rapport \
    && useradd --system --uid 10001 --gid rapport --create-home --home-dir /home/rapport \
        --shell /usr/sbin/nologin rapport \
    && mkdir -p /data/media /data/beat \
    && chown -R rapport:rapport /data

WORKDIR /app
COPY --from=python-packages /opt/venv /opt/venv
COPY --from=node-packages /build/node_modules ./node_modules
COPY . .

# Settings need these at import; the values are throwaway and never reach a running container.
RUN RAPPORT_ENV=production SECRET_KEY=build SITE_URL=https://build.invalid \
    DATABASE_URL=postgres://x/x REDIS_URL=redis://x:6379/0 \
    python manage.py collectstatic --noinput --verbosity 0

# The rapport user, by number so that orchestrators can tell it is not root.
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "/app/docker/healthcheck.py"]
# gunicorn takes its number of workers from WEB_CONCURRENCY (3 unless the environment says).
CMD ["gunicorn", "crm.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
