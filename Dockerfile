# peerd container image: compiled in a Rust builder stage, run from a slim Debian
# as a fixed non-root user. Base images are build args so that builds without
# registry access can substitute locally built ones (see scripts/docker-smoke.sh).
ARG BUILDER_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
# Dependencies get their own layer: editing sources then skips the crate downloads.
# The manifests name their targets explicitly; the bench's file must exist for
# cargo to read the daemon's manifest.
COPY Cargo.toml Cargo.lock ./
COPY crates/peerd/Cargo.toml crates/peerd/Cargo.toml
COPY benches benches
RUN cargo fetch --locked
COPY . .
RUN cargo build --release --locked

FROM ${RUNTIME_IMAGE}
# A fixed UID/GID keeps volume ownership stable across image rebuilds and hosts.
# /var/lib/peerd-cluster is where docker-compose.yml's first node leaves its id
# for the others (a named volume takes this directory's owner).
RUN groupadd --gid 10001 peerd \
 && useradd --no-log-init --uid 10001 --gid 10001 \
      --home-dir /var/lib/peerd --shell /usr/sbin/nologin peerd \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/peerd \
 && install -d -o 10001 -g 10001 -m 0755 /var/lib/peerd-cluster
COPY --from=builder /src/target/release/peerd /usr/local/bin/peerd
ENV PEERD_DATA_DIR=/var/lib/peerd \
    PEERD_ADMIN_SOCKET=/var/lib/peerd/admin.sock \
    PEERD_METRICS_LISTEN=0.0.0.0:9733
USER 10001:10001
WORKDIR /var/lib/peerd
EXPOSE 7733/udp 9733/tcp
VOLUME ["/var/lib/peerd"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
  CMD ["peerd", "health"]
ENTRYPOINT ["peerd"]
CMD ["run"]
