# syntax=docker/dockerfile:1
# The oomgate image for CI jobs (ci-templates/gitlab/oomgate.gitlab-ci.yml with `image:` set to
# it) and `docker run`. It holds the release binary of scripts/release, nothing is compiled here:
#   scripts/release dist/                         # dist/oomgate-<version>-<target>.tar.gz + SHA256SUMS
#   docker build --build-arg VERSION=0.1.0 -t oomgate:0.1.0 .
#   docker run --rm -v "$PWD:/work" oomgate:0.1.0 run scenarios/checkout-api.yaml
# Multi-arch: run scripts/release on an x86_64 and an arm64 machine into the same dist/ (one
# SHA256SUMS), then `docker buildx build --platform linux/amd64,linux/arm64 ...`.
#
# The binary is fully static, so the base only has to bring what oomgate reads at run time: the CA
# bundle (the Kubernetes API, Prometheus and the GitLab/GitHub APIs over TLS) and, for GitLab
# jobs, a shell. Alpine's base image has both (its ca-certificates-bundle), in about 8 MB. The user
# is unprivileged (uid 10001); the image gates Kubernetes workloads, while local workloads need
# root for memory cgroups (without it oomgate measures the processes' PSS and says the limit is
# not enforced).

ARG ALPINE_VERSION=3.22

# Checks the tarball against SHA256SUMS and unpacks it: a tampered dist/ fails the build.
FROM --platform=$BUILDPLATFORM alpine:${ALPINE_VERSION} AS unpack
SHELL ["/bin/ash", "-eo", "pipefail", "-c"]
ARG VERSION=0.1.0
ARG TARGETARCH
COPY dist/SHA256SUMS dist/oomgate-${VERSION}-*.tar.gz /dist/
WORKDIR /dist
RUN case "${TARGETARCH:-amd64}" in \
      amd64) target=x86_64-unknown-linux-gnu ;; \
      arm64) target=aarch64-unknown-linux-gnu ;; \
      *) echo "no oomgate release target for ${TARGETARCH}" >&2; exit 1 ;; \
    esac; \
    name="oomgate-${VERSION}-${target}"; \
    grep "  ${name}.tar.gz\$" SHA256SUMS | sha256sum -c -; \
    tar -xzf "${name}.tar.gz"; \
    install -D -m 0755 "${name}/oomgate" /out/oomgate

FROM alpine:${ALPINE_VERSION}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="oomgate" \
      org.opencontainers.image.description="CI load-test gate on a service's memory against its limit" \
      org.opencontainers.image.source="https://github.com/oomgate/oomgate" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN test -s /etc/ssl/certs/ca-certificates.crt \
 && addgroup -g 10001 oomgate \
 && adduser -D -u 10001 -G oomgate -h /home/oomgate -s /sbin/nologin oomgate \
 && install -d -o 10001 -g 10001 /work
COPY --from=unpack /out/oomgate /usr/local/bin/oomgate
USER 10001:10001
WORKDIR /work
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT ["oomgate"]
CMD ["--help"]
