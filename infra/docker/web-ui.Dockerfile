# syntax=docker/dockerfile:1
# web-ui: pages, JSON API and presigned uploads/downloads, with the AWS adapters.
# Build from the repository root (BuildKit reads web-ui.Dockerfile.dockerignore beside this file):
#   docker build -f infra/docker/web-ui.Dockerfile -t parallax-web-ui .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p web-ui --features parallax-core/aws \
 && install -m 0755 target/release/web-ui /usr/local/bin/web-ui

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app parallax
COPY --from=build /usr/local/bin/web-ui /usr/local/bin/web-ui
WORKDIR /app
USER 10001
ENV STORAGE_ADAPTER=aws LOG_FORMAT=json WEB_UI_BIND=0.0.0.0 WEB_UI_PORT=8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/web-ui"]
