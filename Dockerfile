# syntax=docker/dockerfile:1
# One image for every Waypost component; the Helm chart (helm/waypost) picks the
# component by its arguments: `orchestrator run`, `agent run MODULE`, `indexer run`,
# `serve`, `migrate`.
#
#   docker build -t registry.example.com/waypost:0.1.0 .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: the project wheel, and a virtualenv with it and its pinned dependencies ---
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# requirements.lock pins runtime and development packages alike, so it serves as
# constraints: only what the wheel depends on is installed, at the locked versions.
# Its index options point at the CI machine's mirrors; PyPI is used here.
COPY requirements.lock ./
RUN sed -e '/^--/d' requirements.lock > /tmp/constraints.txt \
 && python -m venv /opt/waypost \
 && pip install --constraint /tmp/constraints.txt hatchling

COPY pyproject.toml README.md ./
COPY waypost ./waypost
COPY orchestrator ./orchestrator
COPY agents ./agents
COPY review_ui ./review_ui
COPY schemas ./schemas
COPY migrations ./migrations
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/dist . \
 && /opt/waypost/bin/pip install --only-binary=:all: \
      --constraint /tmp/constraints.txt /tmp/dist/waypost-*.whl \
 && /opt/waypost/bin/python -m compileall -q /opt/waypost/lib

# --- runtime: Python, the virtualenv, an unprivileged user; no compilers, no pip cache ---
FROM ${PYTHON_IMAGE}

# USER names the actor of `waypost user ...` in the audit log even when the cluster runs
# the image under a UID without a passwd entry (getpass would fail there).
ENV PATH=/opt/waypost/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/home/waypost \
    USER=waypost \
    TMPDIR=/tmp

RUN groupadd --system --gid 10001 waypost \
 && useradd --system --uid 10001 --gid waypost --home-dir /home/waypost --create-home \
      --shell /usr/sbin/nologin waypost

COPY --from=build /opt/waypost /opt/waypost

# Agent modules are imported from the working directory first (as `python -m` would);
# an empty one leaves only the installed packages.
WORKDIR /app
USER 10001:10001

EXPOSE 8000 9464
ENTRYPOINT ["waypost"]
CMD ["--help"]
