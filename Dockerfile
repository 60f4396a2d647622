# OANet pipeline image. CPU by default; a CUDA build of torch with
#   docker build --build-arg TORCH_FLAVOR=cuda -t oanet:cuda .
# (PyPI's torch wheels carry the CUDA runtime; the host provides the driver.)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ARG TORCH_FLAVOR=cpu
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    DO_NOT_TRACK=true \
    MLFLOW_DISABLE_TELEMETRY=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=90 \
    DVC_NO_ANALYTICS=1 \
    GX_ANALYTICS_ENABLED=false

# OpenCV (used by rapidocr) needs libGL and glib; LightGBM needs OpenMP; DVC needs git.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 libgomp1 git \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 oanet
WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements.txt ./
RUN if [ "$TORCH_FLAVOR" = "cpu" ]; then \
      pip install torch==2.14.1 torchvision==0.29.1 --index-url "$TORCH_CPU_INDEX"; \
    fi \
 && pip install -r requirements.txt

COPY pyproject.toml README.md params.yaml dvc.yaml prefect.yaml ./
COPY oanet ./oanet
COPY flows ./flows
COPY expectations ./expectations
COPY incoming/README.md ./incoming/README.md
RUN pip install --no-deps . && chown -R oanet:oanet /app
USER oanet
ENV PREFECT_HOME=/app/.prefect MPLCONFIGDIR=/app/.cache/matplotlib OANET_PROJECT_DIR=/app

ENTRYPOINT ["oanet"]
CMD ["--help"]
