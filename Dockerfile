# syntax=docker/dockerfile:1
# The oomgate image for CI jobs (ci-templates/gitlab/oomgate.gitlab-ci.yml uses it):
#   docker build -t oomgate:0.1.0 .
#   docker run --rm -v "$PWD:/work" -w /work oomgate:0.1.0 run scenarios/checkout-api.yaml
# Two stages: the Rust toolchain builds a release binary; the runtime image is Debian slim with
# CA certificates (for the Kubernetes API and Prometheus over TLS) and a non-root user.
# The image gates Kubernetes workloads; local workloads need root for memory cgroups, without
# which oomgate measures the process tree's RSS and says the limit is not enforced.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
# aws-lc-sys (TLS) builds C code; cmake is its fallback build tool on less common targets.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin oomgate \
 && install -D -m 0755 target/release/oomgate /out/oomgate

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 oomgate \
 && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/oomgate --shell /usr/sbin/nologin oomgate \
 && install -d -o 10001 -g 10001 /work
COPY --from=builder /out/oomgate /usr/local/bin/oomgate
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["oomgate"]
CMD ["--help"]
