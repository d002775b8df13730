# Portfolio's production image: gunicorn for web, the same image for the Celery worker and
# beat (see docker-compose.yml). Front-end packages come from the npm registry at build.

# --- front-end packages (htmx, pinned in package-lock.json) --------------------------
FROM node:20-slim AS frontend
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

# --- the application -----------------------------------------------------------------
FROM python:3.11-slim

# Configuration comes from the container's environment only (PORTFOLIO_ENV_FILE empty:
# no .env file is read).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORTFOLIO_ENV_FILE="" \
    DJANGO_SETTINGS_MODULE=config.settings

WORKDIR /app

# Dependencies first, so code changes do not reinstall them: the pinned, hashed
# requirements.lock (as `make install`), then the project itself without dependencies
# (pyproject.toml declares no packages: the code runs from /app).
COPY pyproject.toml README.md requirements.lock ./
RUN pip install --require-hashes -r requirements.lock \
    && pip install --no-deps .

COPY --from=frontend /build/node_modules/htmx.org/dist /app/node_modules/htmx.org/dist
COPY . .

# Hashed, compressed static files for whitenoise. Settings need some SECRET_KEY to load;
# this one exists only during the build and signs nothing.
RUN SECRET_KEY=collectstatic-build-only DEBUG=0 python manage.py collectstatic --noinput -v 0

RUN useradd --system --uid 10001 --home-dir /app portfolio
USER portfolio

EXPOSE 8000
# gunicorn reads /app/gunicorn.conf.py: gthread workers, WEB_CONCURRENCY processes (3) of
# GUNICORN_THREADS threads (4), GUNICORN_TIMEOUT 30 s (README.md, "Web server (gunicorn)").
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
