# The FormRelay sidecar: `formrelay migrate | web | worker | run | status`.
# Build context: the repository root (see .dockerignore).
#
# The base is pinned by digest, so a rebuild gets the same bytes until someone moves
# the pin on purpose. The digest below is the one public Dockerfiles pin for this tag
# (seen in more than one); it could NOT be checked against Docker Hub where this was
# written (no registry access). Before relying on it, and to move it forward:
#   docker buildx imagetools inspect python:3.11-slim-bookworm   # "Digest: sha256:..."
FROM python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# libmagic1: python-magic's library for the document type checks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmagic1 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# Dependencies first, from the lock: pinned versions, every file's hash checked (a layer
# that stays cached until requirements.lock changes; `make lock` refreshes it).
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
# sidecar/schema_sql is a link to ../wp_bridge_plugin/schema and its *.sql files
# are package data: the link's target must be in the image before `pip install`.
COPY wp_bridge_plugin/schema/ wp_bridge_plugin/schema/
COPY sidecar/ sidecar/
# Payload and dashboard templates are read from here, not from the package.
COPY templates/ templates/
ENV FORMRELAY_TEMPLATES_DIR=/app/templates
# The project itself, resolving nothing: its dependencies are the lock's.
RUN pip install --no-deps . \
 && pip check \
 && python -c "import importlib.resources as r; assert any((r.files('sidecar') / 'schema_sql').iterdir())"

RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/formrelay formrelay
USER formrelay

EXPOSE 8787
# Probes what the container runs (sidecar/probe.py, urllib, no curl): `run`/`web` their
# /readyz on FORMRELAY_LISTEN, `worker` its /livez on FORMRELAY_WORKER_LISTEN (when set).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "sidecar.probe"]
ENTRYPOINT ["formrelay"]
CMD ["run"]
