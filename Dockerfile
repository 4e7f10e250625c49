# Serving image: the REST model server (`mlops serve`) on port 8000, as a non-root user.
#   docker build -t construction-delays .
#   docker run -p 8000:8000 -e MODEL_URI=models:/construction-delays-classifier/3 \
#     -e MLFLOW_TRACKING_URI=https://mlflow.example.com construction-delays
#
# Base images are pinned by digest. The digests below are PLACEHOLDERS: this template was written
# without registry access, so they name no real image and the build fails until you replace them:
#   docker buildx imagetools inspect python:3.11-slim   (the "Digest:" line)
#   docker buildx imagetools inspect ghcr.io/astral-sh/uv:0.13.9
# or pass them at build time: --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<real digest>.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:0000000000000000000000000000000000000000000000000000000000000000
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9@sha256:0000000000000000000000000000000000000000000000000000000000000000

FROM ${UV_IMAGE} AS uv

# Builder: the locked runtime dependencies and the project, installed into /opt/venv.
FROM ${PYTHON_IMAGE} AS builder
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
COPY --from=uv /uv /usr/local/bin/uv
WORKDIR /app
# Dependencies first: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY src/ src/
RUN uv sync --locked --no-dev --no-editable

# Runtime: the same Python, the venv, the params and nothing else (no uv, no compilers, no tests).
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /tmp --no-create-home --shell /usr/sbin/nologin app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY params.yaml ./
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["mlops", "serve", "--host", "0.0.0.0", "--port", "8000"]
