# syntax=docker/dockerfile:1
# video-worker: depth inference (ONNX Runtime, CUDA execution provider) and stereo rendering,
# with the AWS adapters, for the GPU capacity provider (ECS GPU-optimised AMI, NVIDIA runtime).
# Build from the repository root:
#   docker build -f infra/docker/video-worker.Dockerfile -t parallax-video-worker .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p video-worker --features parallax-core/aws \
 && install -m 0755 target/release/video-worker /usr/local/bin/video-worker

# ONNX Runtime's GPU build comes from the onnxruntime-gpu wheel (its shared library is loaded
# at run time through ORT_DYLIB_PATH, as on a developer machine with the CPU wheel).
FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 AS ort
ARG ORT_VERSION=1.31.1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/ort \
 && /opt/ort/bin/pip install --no-cache-dir "onnxruntime-gpu==${ORT_VERSION}" \
 && ln -s "$(/opt/ort/bin/python -c 'import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))')/capi" /opt/ort/capi

FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04
ARG ORT_VERSION=1.31.1
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates ffmpeg python3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app parallax
COPY --from=ort /opt/ort /opt/ort
COPY --from=build /usr/local/bin/video-worker /usr/local/bin/video-worker
# The default depth model that ships in the repository.
COPY models/ /app/models/
WORKDIR /app
USER 10001
ENV STORAGE_ADAPTER=aws LOG_FORMAT=json TMPDIR=/tmp EXECUTION_PROVIDER=cuda \
    ORT_DYLIB_PATH=/opt/ort/capi/libonnxruntime.so.${ORT_VERSION} \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility,video
ENTRYPOINT ["/usr/local/bin/video-worker"]
