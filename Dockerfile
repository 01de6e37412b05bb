# syntax=docker/dockerfile:1
#
# One image per service, picked with a build target:
#
#   docker build --target gateway      -t imagegen/gateway .
#   docker build --target vision       -t imagegen/vision .
#   docker build --target planner      -t imagegen/planner .
#   docker build --target render       -t imagegen/render .
#   docker build --target fake-ollama  -t imagegen/fake-ollama .    # stand-ins, no GPU
#   docker build --target fake-comfyui -t imagegen/fake-comfyui .
#
# The four service targets share the layers up to `runtime`. The stand-ins (`standins/`, with
# aiohttp) are only in the two stand-in images, never in a service image.
# Settings come from the environment (see README); nothing is baked in but the bind
# address (0.0.0.0: a container is reached from outside itself).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------
# build: the runtime dependencies of pyproject.toml in a virtualenv. Binary wheels only,
# so no compiler is needed here and none can reach the final image.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml ./
# Only the dependency list is read, so editing code does not reinstall them.
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('requirements.txt', 'w').write(chr(10).join(deps))" \
 && /opt/venv/bin/pip install --only-binary=:all: --requirement requirements.txt

# build-standins: the build plus the `standins` extra (aiohttp), for the stand-in images only.
FROM build AS build-standins
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['standins']; open('standins.txt', 'w').write(chr(10).join(deps))" \
 && /opt/venv/bin/pip install --only-binary=:all: --requirement standins.txt

# ---------------------------------------------------------------------------------------
# runtime: the virtualenv, the code (owned by root, read-only to the service) and an
# unprivileged user. No build tools, no pip cache, no tests.
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app:/app/protos \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 imagegen \
 && useradd --system --uid 10001 --gid imagegen --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin imagegen
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY protos/imagegen ./protos/imagegen
COPY services ./services
COPY gateway ./gateway
COPY workflows ./workflows
# Compiled once here: the code is read-only at run time.
RUN python -m compileall -q /app/protos /app/services /app/gateway \
 && install -d -o 10001 -g 10001 /var/lib/imagegen/jobs
USER 10001:10001
STOPSIGNAL SIGTERM

# ---------------------------------------------------------------------------------------
# The stand-ins of Ollama and ComfyUI (HTTP), for trying the stack without a GPU: the
# runtime plus the `standins` extra (aiohttp) and the `standins/` package.
FROM runtime AS standins
COPY --from=build-standins /opt/venv /opt/venv
COPY standins ./standins
USER root
RUN python -m compileall -q /app/standins
USER 10001:10001

FROM standins AS fake-ollama
EXPOSE 11434
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:11434/api/version', timeout=2)" || exit 1
CMD ["python", "-m", "standins.ollama", "--host", "0.0.0.0", "--port", "11434"]

FROM standins AS fake-comfyui
EXPOSE 8188
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8188/system_stats', timeout=2)" || exit 1
CMD ["python", "-m", "standins.comfyui", "--host", "0.0.0.0", "--port", "8188"]

# ---------------------------------------------------------------------------------------
# The services. Each health check asks the server's own grpc.health.v1 status, over TLS
# (presenting the service's certificate, for mutual TLS) when the service has one; TLS
# certificates must then name "localhost" besides the service, and allow client
# authentication when mutual TLS is required. Without a CA file the check trusts the
# service's own certificate.
FROM runtime AS vision
ENV VISION_HOST=0.0.0.0
EXPOSE 50052
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -m services.common.healthcheck --addr "127.0.0.1:${VISION_PORT:-50052}" \
        --service imagegen.vision.v1.VisionService \
        ${VISION_TLS_CERT_FILE:+--tls-cert "$VISION_TLS_CERT_FILE" --tls-key "$VISION_TLS_KEY_FILE" --tls-server-name localhost ${VISION_TLS_CA_FILE:+--tls-ca "$VISION_TLS_CA_FILE"}} \
        || exit 1
CMD ["python", "-m", "services.vision"]

FROM runtime AS planner
ENV PLANNER_HOST=0.0.0.0
EXPOSE 50053
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -m services.common.healthcheck --addr "127.0.0.1:${PLANNER_PORT:-50053}" \
        --service imagegen.planner.v1.PlannerService \
        ${PLANNER_TLS_CERT_FILE:+--tls-cert "$PLANNER_TLS_CERT_FILE" --tls-key "$PLANNER_TLS_KEY_FILE" --tls-server-name localhost ${PLANNER_TLS_CA_FILE:+--tls-ca "$PLANNER_TLS_CA_FILE"}} \
        || exit 1
CMD ["python", "-m", "services.planner"]

FROM runtime AS render
ENV RENDER_HOST=0.0.0.0
EXPOSE 50054
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD python -m services.common.healthcheck --addr "127.0.0.1:${RENDER_PORT:-50054}" \
        --service imagegen.render.v1.RenderService \
        ${RENDER_TLS_CERT_FILE:+--tls-cert "$RENDER_TLS_CERT_FILE" --tls-key "$RENDER_TLS_KEY_FILE" --tls-server-name localhost ${RENDER_TLS_CA_FILE:+--tls-ca "$RENDER_TLS_CA_FILE"}} \
        || exit 1
CMD ["python", "-m", "services.render"]

# The default target (a build without --target) is the gateway.
FROM runtime AS gateway
ENV GATEWAY_HOST=0.0.0.0
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD python -m services.common.healthcheck --addr "127.0.0.1:${GATEWAY_PORT:-50051}" \
        --service imagegen.gateway.v1.GatewayService \
        ${GATEWAY_TLS_CERT_FILE:+--tls-cert "$GATEWAY_TLS_CERT_FILE" --tls-key "$GATEWAY_TLS_KEY_FILE" --tls-server-name localhost ${GATEWAY_TLS_CA_FILE:+--tls-ca "$GATEWAY_TLS_CA_FILE"}} \
        || exit 1
CMD ["python", "-m", "gateway"]
