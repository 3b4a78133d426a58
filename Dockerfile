# syntax=docker/dockerfile:1
#
# Evangelist container image.
#
#   docker build -t evangelist .
#   docker run --init -p 127.0.0.1:3978:3978 -v evangelist-data:/data \
#       -e EVANGELIST_CONFIG=/app/examples/organisation.yaml evangelist
#
# The default command is `evangelist serve`, which upgrades the database itself. Any other
# command replaces it, for example:
#
#   docker run --rm -v evangelist-data:/data evangelist evangelist db upgrade
#   docker run --rm evangelist evangelist config validate /app/examples/organisation.yaml
#
# Secrets can be passed as NAME_FILE=/run/secrets/name instead of NAME=value.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: build the wheel and install it with its dependencies into a virtualenv ----------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY nudges ./nudges
COPY content_library ./content_library
COPY migrations ./migrations

RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip install /wheels/*.whl

# ---- runtime: the virtualenv, the examples and an unprivileged user ---------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH="/opt/venv/bin:${PATH}" \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    EVANGELIST_HOST=0.0.0.0 \
    EVANGELIST_PORT=3978 \
    EVANGELIST_DATABASE_URL=sqlite:////data/evangelist.db

RUN groupadd --gid 10001 evangelist \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/evangelist \
        --shell /usr/sbin/nologin evangelist \
    && mkdir -p /data \
    && chown evangelist:evangelist /data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY examples/ ./examples/

# The SQLite database (the default) lives here; with PostgreSQL the volume stays empty.
VOLUME ["/data"]

# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001

EXPOSE 3978

# slim images have no curl: ask /healthz with the Python standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('EVANGELIST_PORT', '3978') + '/healthz', timeout=4)"]

# No ENTRYPOINT, so `docker run IMAGE evangelist db upgrade` (or any command) replaces this.
CMD ["evangelist", "serve"]
