# CUDA worker image: `docker build -t advmoe-worker .`
# Run: docker run --gpus all -e ADVMOE_KEY=<64 hex chars> -p 127.0.0.1:5555:5555 advmoe-worker
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    ADVMOE_SCHEMA_DIR=/opt/advmoe/schemas
WORKDIR /opt/advmoe

COPY py/pyproject.toml py/requirements-extra.txt /opt/advmoe/py/
COPY py/advmoe_worker /opt/advmoe/py/advmoe_worker
COPY schemas /opt/advmoe/schemas
# torch comes from the base image; the worker accepts any torch >= 2.1.
RUN pip install --no-cache-dir "/opt/advmoe/py[tensorboard]" \
 && pip install --no-cache-dir --no-deps -r /opt/advmoe/py/requirements-extra.txt

RUN useradd --create-home worker && mkdir -p /workspace && chown worker /workspace
USER worker
WORKDIR /workspace
EXPOSE 5555
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python -c "import socket; socket.create_connection(('127.0.0.1', 5555), 2)"
ENTRYPOINT ["python", "-m", "advmoe_worker", "--bind", "tcp://0.0.0.0:5555", "--allow-remote", "--workspace", "/workspace"]
