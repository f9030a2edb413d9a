# MarioNETte Live server image. CUDA-capable base: on a GPU host run with --gpus all
# (the models run on CPU when no GPU is visible). For a small CPU-only image:
#   docker build --build-arg BASE_IMAGE=ubuntu:24.04 -t marionette-live:cpu .
ARG BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${BASE_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Python 3.11 from deadsnakes is not needed: Ubuntu 24.04 ships 3.12, and every pinned requirement has a
# cp312 manylinux wheel (checked with pip --dry-run; face_recognition_models is a pure-data sdist).
# npm: set-up fetches MediaPipe's canonical face from its npm package with `npm pack` (the configured registry).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv npm \
 && rm -rf /var/lib/apt/lists/*

# The Grace Hopper gallery portrait ships in the facedetect package's docs. Ubuntu images exclude
# /usr/share/doc from installs, and the package would pull in python3-opencv besides, so unpack just the
# one file from the .deb (universe; public domain photo).
RUN apt-get update \
 && cd /tmp && apt-get download facedetect \
 && dpkg-deb -x facedetect_*.deb /tmp/facedetect \
 && install -D -m 0644 /tmp/facedetect/usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg \
      /usr/share/doc/facedetect/examples/grace_hopper_512x512.jpg \
 && rm -rf /tmp/facedetect /tmp/facedetect_*.deb /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 marionette
WORKDIR /app
COPY requirements.txt .
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt
ENV PATH=/opt/venv/bin:$PATH

COPY options/ options/
COPY models/ models/
COPY rtc/ rtc/
COPY server/ server/
COPY client_web/ client_web/
# The load tester, and evaluation/ for the machine facts its reports carry.
COPY loadtest/ loadtest/
COPY evaluation/ evaluation/
COPY pyproject.toml README.md ./
# Fetch the offline assets (dlib models check, gallery, test clips) at build time, then hand the tree to
# the service user (uploads and caches are written under /app/assets at run time).
RUN python -m models.asset_fetch && chown -R marionette:marionette /app

USER marionette
EXPOSE 8080
# No curl in the image: the health check is a Python one-liner against the server's /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"
CMD ["python", "-m", "server", "--host", "0.0.0.0", "--port", "8080"]
