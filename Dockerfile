# syntax=docker/dockerfile:1
#
# claude-proxy image: `docker build -t claude-proxy:<tag> .`
#
# Two stages on the same base image, so the virtualenv built in the first one runs
# unchanged in the second (a venv hard-codes the interpreter's path):
#   build    installs the project and its runtime dependencies into /opt/venv;
#   runtime  copies only /opt/venv and app.py: no compilers, no pip cache, no sources,
#            no tests, no dev/test extras and no development database (the `local`
#            extra is GPL and beta; the image talks to a real MongoDB through
#            MONGODB_URI).

FROM python:3.11-slim-trixie AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# The runtime dependencies first, read from pyproject.toml's [project].dependencies:
# this layer is rebuilt only when pyproject.toml changes, not on every code change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/runtime-requirements.txt \
    && pip install -r /tmp/runtime-requirements.txt

# Then the project itself: a regular (non-editable) install of `.` with no extras, so
# exactly the packages pyproject.toml lists end up in site-packages. `pip check` fails
# the build if anything the project needs is missing or conflicting.
COPY . .
RUN pip install . && pip check


FROM python:3.11-slim-trixie AS runtime

# A fixed numeric uid/gid: Kubernetes' runAsNonRoot can only verify a numeric USER,
# and k8s/base/deployment.yaml runs as the same ids.
RUN groupadd --system --gid 10001 proxy \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin proxy \
    && install -d -o 10001 -g 10001 -m 0750 /data

COPY --from=build /opt/venv /opt/venv
# `python app.py` is the entry point; everything it imports comes from the venv.
COPY --from=build /src/app.py /app/app.py

# HOST=0.0.0.0: the default 127.0.0.1 would be unreachable from outside the container.
# A non-loopback HOST refuses to start without DASHBOARD_PASSWORD (`docker run -e
# DASHBOARD_PASSWORD=...`), unless DASHBOARD_OPEN=true says an open dashboard is meant.
# DATA_DIR=/data: the log writer's on-disk journal; Kubernetes mounts an emptyDir here
# (the root filesystem is read-only there).
# PYTHONDONTWRITEBYTECODE: site-packages is compiled at install time, and nothing may
# be written next to the code on a read-only root filesystem.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=3001 \
    DATA_DIR=/data

WORKDIR /app
USER 10001:10001
EXPOSE 3001

# Exec form, so Python is PID 1 and receives SIGTERM itself: Sanic's process manager
# turns it into a drain in every worker (see runtime/drain.py). Send it only once: a
# second SIGTERM while shutting down makes Sanic's manager kill its workers at once.
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "/app/app.py"]
