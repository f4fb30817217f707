# The derivatives service: the FastAPI app on uvicorn, as a non-root user.
#
#   docker build -t derivative-service .
#   docker run -p 127.0.0.1:8000:8000 derivative-service
#
# Dependencies come only from requirements.lock (hash-checked; scripts/lock.sh makes it).
# To build with no network, give a folder holding every locked file, mounted at build time:
#   podman build -v "$PWD/wheels:/wheels:ro" --build-arg WHEELS=/wheels --network none .
# (scripts/container-smoke.sh does that). PYTHON_IMAGE may name a mirror of the same base.

ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# A folder of the locked wheels; empty means the package index.
ARG WHEELS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements.lock ./
RUN pip install ${WHEELS:+--no-index --find-links "$WHEELS"} \
        --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY engine/ engine/
COPY app/ app/
RUN pip install --no-index --no-deps --no-build-isolation . \
    && pip uninstall --yes setuptools

FROM ${PYTHON_IMAGE}
# Graphviz's dot lays out POST /v1/draw's pictures (a base that has it already skips this).
# Not pinned: the base pins the Debian release, whose security updates replace the version.
# hadolint ignore=DL3008
RUN command -v dot >/dev/null \
    || (apt-get update \
        && apt-get install --yes --no-install-recommends graphviz \
        && rm -rf /var/lib/apt/lists/*)
RUN groupadd --system --gid 10001 deriv \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin deriv
COPY --from=build /opt/venv /opt/venv
# uvicorn reads every UVICORN_* variable as its command-line option of the same name
# (--workers, --timeout-keep-alive, --timeout-graceful-shutdown, --forwarded-allow-ips, ...),
# so these are the defaults and `docker run -e UVICORN_WORKERS=4` changes one.
# Keep-alive outlives the gateway's upstream keep-alive (60 s), so the gateway closes first.
# One BLAS thread per process: request threads (and UVICORN_WORKERS) already fill the cores,
# and BLAS threads inside each oversubscribe them (deploy/README.md); the app also pins it
# at start-up (DERIV_BLAS_THREADS), these cover every process, SymPy workers included.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    MALLOC_ARENA_MAX=2 \
    UVICORN_HOST=0.0.0.0 \
    UVICORN_PORT=8000 \
    UVICORN_WORKERS=2 \
    UVICORN_TIMEOUT_KEEP_ALIVE=75 \
    UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN=30 \
    UVICORN_FORWARDED_ALLOW_IPS=127.0.0.1
WORKDIR /srv
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('UVICORN_PORT', '8000'), timeout=2)"]
CMD ["uvicorn", "app.main:app", "--proxy-headers"]
