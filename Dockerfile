# CUDA worker image: `docker build -t advmoe-worker .`
# Keys: python -m advmoe_worker.keys ./keys  (signing.key, server.secret, server.public)
# Run:  docker run --gpus all -p 5555:5555 -e ADVMOE_KEY="$(cat keys/signing.key)" \
#         -e ADVMOE_CURVE_SECRET_KEY="$(cat keys/server.secret)" advmoe-worker
#       (or mount the key files at /keys, readable by the container's user)
# The base's torch must be at or above the floor in py/pyproject.toml (a test checks it).
FROM pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    ADVMOE_SCHEMA_DIR=/opt/advmoe/schemas \
    ADVMOE_KEY_FILE=/keys/signing.key \
    ADVMOE_CURVE_SECRET_KEY_FILE=/keys/server.secret
WORKDIR /opt/advmoe

COPY py/pyproject.toml py/requirements-extra.txt /opt/advmoe/py/
COPY py/advmoe_worker /opt/advmoe/py/advmoe_worker
COPY schemas /opt/advmoe/schemas
# torch comes from the base image; pip keeps it, as it meets the floor.
RUN pip install --no-cache-dir "/opt/advmoe/py[tensorboard]" \
 && pip install --no-cache-dir --no-deps -r /opt/advmoe/py/requirements-extra.txt

RUN useradd --create-home worker && mkdir -p /workspace && chown worker /workspace
USER worker
WORKDIR /workspace
EXPOSE 5555
# A signed `info` with the worker's own keys: a TCP connect would pass for a dead loop.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s \
  CMD ["python", "-m", "advmoe_worker.health", "--endpoint", "tcp://127.0.0.1:5555"]
# --allow-remote makes the worker refuse to start without a signing key and a CURVE key.
ENTRYPOINT ["python", "-m", "advmoe_worker", "--bind", "tcp://0.0.0.0:5555", "--allow-remote", "--workspace", "/workspace"]
