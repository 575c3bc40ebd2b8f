# syntax=docker/dockerfile:1
# media-worker: chunking and reassembly with ffmpeg, with the AWS adapters.
# Build from the repository root:
#   docker build -f infra/docker/media-worker.Dockerfile -t parallax-media-worker .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p media-worker --features parallax-core/aws \
 && install -m 0755 target/release/media-worker /usr/local/bin/media-worker

FROM debian:bookworm-slim
# ffmpeg 5.1 from Debian, the same version the tests run against.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app parallax
COPY --from=build /usr/local/bin/media-worker /usr/local/bin/media-worker
WORKDIR /app
USER 10001
ENV STORAGE_ADAPTER=aws LOG_FORMAT=json TMPDIR=/tmp
ENTRYPOINT ["/usr/local/bin/media-worker"]
