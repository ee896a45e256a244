# One image with both programs: `sekisho` (the gateway) and `ashi` (the platform behind it),
# plus the .proto files the gateway compiles at start-up for REST transcoding. The
# Kubernetes manifests in deploy/ pick the program with `command`.
#   docker build -t registry.example.com/sekisho:0.1.0 .

FROM rust:1.95-bookworm AS build
WORKDIR /src

# Dependencies first, in a layer that is rebuilt only when a manifest or Cargo.lock changes:
# the workspace's manifests with empty sources stand in for the real code.
COPY Cargo.toml Cargo.lock ./
COPY crates/sekisho/Cargo.toml crates/sekisho/
COPY crates/ashi/Cargo.toml crates/ashi/
COPY crates/grpc-transcode/Cargo.toml crates/grpc-transcode/
COPY crates/waf/Cargo.toml crates/waf/
COPY crates/interop/Cargo.toml crates/interop/
COPY crates/prerequisite/Cargo.toml crates/prerequisite/
COPY crates/hpack/Cargo.toml crates/hpack/
COPY crates/h2frame/Cargo.toml crates/h2frame/
COPY crates/h2conn/Cargo.toml crates/h2conn/
COPY bench/loadgen/Cargo.toml bench/loadgen/
RUN set -eu; \
    members="crates/sekisho crates/ashi crates/grpc-transcode crates/waf crates/interop crates/prerequisite crates/hpack crates/h2frame crates/h2conn bench/loadgen"; \
    for member in $members; do \
      mkdir -p "$member/src"; \
      touch "$member/src/lib.rs"; \
      echo 'fn main() {}' > "$member/src/main.rs"; \
    done; \
    cargo build --release --locked -p sekisho -p ashi; \
    for member in $members; do rm -rf "$member/src"; done

# The real sources. Their timestamps may be older than the stand-ins' build, so touch them
# to make cargo rebuild the workspace's own crates.
COPY . .
RUN find crates bench -name '*.rs' -exec touch {} + \
 && cargo build --release --locked -p sekisho -p ashi

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sekisho \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin sekisho
COPY --from=build /src/target/release/sekisho /src/target/release/ashi /usr/local/bin/
# gateway.yaml names the .proto files relative to this directory (proto/ashi/v1/...).
COPY proto /usr/share/sekisho/proto
WORKDIR /usr/share/sekisho
USER 10001:10001
EXPOSE 8080 8443 9901 50051
CMD ["sekisho", "run", "--config", "/etc/sekisho/config/gateway.yaml"]
