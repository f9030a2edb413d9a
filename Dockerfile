# MarioNETte Live server image. CUDA-capable base: on a GPU host run with --gpus all
# (the models run on CPU when no GPU is visible).
ARG BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Python 3.11 from deadsnakes is not needed: Ubuntu 24.04 ships 3.12, which every pinned wheel supports.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip facedetect \
 && rm -rf /var/lib/apt/lists/*
# facedetect's example portrait lives under /usr/share/doc, which slim images may exclude: keep it.
RUN test -f /usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg || echo "warning: Grace Hopper portrait missing"

RUN useradd --create-home --uid 10001 marionette
WORKDIR /app
COPY requirements.txt .
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt
ENV PATH=/opt/venv/bin:$PATH

COPY models/ models/
COPY server/ server/
COPY client_web/ client_web/
COPY loadtest/ loadtest/
COPY pyproject.toml README.md ./
# Fetch the offline assets (gallery, test clips) at build time, then hand the tree to the service user.
RUN python -m models.assets && chown -R marionette:marionette /app

USER marionette
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"
CMD ["python", "-m", "server", "--host", "0.0.0.0", "--port", "8080"]
