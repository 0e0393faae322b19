#!/usr/bin/env bash
# Smoke test of the container setup: builds the peerd image from the Dockerfile,
# starts the 3-node cluster of docker-compose.yml (node2 and node3 bootstrap
# from node1), waits until every node is healthy, reads each node's id with
# `peerd id --json`, then checks from outside the containers: each node's
# /metrics on :9733 answers from the host and shows a connection; node3
# pings node2 by id alone (a lookup through what node1 taught it); and
# `peerd ping <id>@nodeM:7733` works from every node to every other node.
# Exits 0 only if all 10 checks pass. The cluster is torn down on exit.
#
# No container registry is reachable from our machines, so the base images the
# Dockerfile names by default (rust:1-bookworm, debian:bookworm-slim) cannot be
# pulled. This script builds local stand-ins and passes them as build args:
#   runtime base: a minimal Debian bookworm made with debootstrap;
#   builder base: Debian bookworm with build-essential (debootstrap's buildd
#                 variant) plus a copy of the host's Rust toolchain.
# Both are cached as local image tags and only built when the tag is missing.
#
# Needs: root; Debian's apt (installs docker.io, debootstrap, jq, curl, and
# docker-compose when no compose is found; without any compose it falls back to
# plain `docker run`); rustc on the host; network access to the Debian mirror and
# crates.io. Starts dockerd if no daemon answers, and stops it again on exit.
# Environment: PEERD_SRC      build context (default: this repository)
#              DEBIAN_MIRROR  (default: http://deb.debian.org/debian)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
src=$(cd "${PEERD_SRC:-$repo}" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
project=peerd-smoke
image=peerd:smoke
runtime_base=peerd-smoke/runtime-base:bookworm
work=$(mktemp -d)
dockerd_pid=
cluster_started=
compose=()

die() { echo "docker-smoke: $*" >&2; exit 1; }

# Quiet unless it fails: the smoke output should show the build, not dpkg.
apt_updated=
apt_install() {
  echo "apt-get install $*"
  if [ -z "$apt_updated" ]; then
    apt-get update >>"$work/apt.log" 2>&1 || { tail -n 20 "$work/apt.log" >&2; return 1; }
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >>"$work/apt.log" 2>&1 \
    || { tail -n 20 "$work/apt.log" >&2; return 1; }
}

# docker-compose.yml takes the image tag from PEERD_IMAGE.
compose_cmd() {
  PEERD_IMAGE=$image "${compose[@]}" -p "$project" -f "$repo/docker-compose.yml" "$@"
}

# Waits up to 120 s for node $1's container to be running and healthy.
wait_healthy() {
  local n=$1 deadline=$((SECONDS + 120)) state
  while :; do
    state=$(docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$(cluster_cid "$n")" 2>/dev/null || echo missing/)
    case $state in
      running/healthy) return 0 ;;
      running/* | missing/) ;;
      *) die "node$n is not running ($state)" ;;
    esac
    [ "$SECONDS" -lt "$deadline" ] || die "node$n not healthy after 120 s ($state)"
    sleep 2
  done
}

# node1 first: it leaves its id in the cluster volume, and node2 and node3
# bootstrap from it (as docker-compose.yml wires them).
node1_entry="peerd init | sed -n 's/^node id: //p' > /var/lib/peerd-cluster/node1.id; exec peerd run"
follower_entry='exec peerd run --bootstrap "$(cat /var/lib/peerd-cluster/node1.id)@node1:7733"'

run_node() {
  local n=$1 cluster_mode=$2 entry=$3
  docker run -d --name "$project-node$n" --hostname "node$n" \
    --network "$project" --network-alias "node$n" \
    -v "$project-node$n:/var/lib/peerd" -v "$project-cluster:/var/lib/peerd-cluster$cluster_mode" \
    --entrypoint sh "$image" -ec "$entry" >/dev/null
}

cluster_up() {
  if [ ${#compose[@]} -gt 0 ]; then
    compose_cmd up -d --no-build
  else
    docker network create "$project" >/dev/null
    run_node 1 "" "$node1_entry"
    wait_healthy 1
    for n in 2 3; do
      run_node "$n" :ro "$follower_entry"
    done
  fi
}

cluster_cid() {
  if [ ${#compose[@]} -gt 0 ]; then
    compose_cmd ps -q "node$1"
  else
    echo "$project-node$1"
  fi
}

cluster_down() {
  if [ ${#compose[@]} -gt 0 ]; then
    compose_cmd down -v
  else
    docker rm -f "$project-node1" "$project-node2" "$project-node3"
    docker volume rm "$project-node1" "$project-node2" "$project-node3" "$project-cluster"
    docker network rm "$project"
  fi
}

cleanup() {
  local rc=$?
  set +e
  if [ -n "$cluster_started" ]; then
    if [ "$rc" -ne 0 ]; then
      for n in 1 2 3; do
        echo "--- last log lines of node$n"
        docker logs --tail 50 "$(cluster_cid "$n")" 2>&1
      done
    fi
    cluster_down >/dev/null
  fi
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid"
    wait "$dockerd_pid"
  fi
  rm -rf --one-file-system "$work"
  exit "$rc"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || die "must run as root (dockerd, debootstrap, apt)"
command -v rustc >/dev/null || die "needs rustc on the host: the builder base copies its toolchain"

# --- Docker engine --------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || apt_install docker.io || die "could not install docker.io"
  if [ -d /run/systemd/system ]; then
    systemctl start docker
  else
    dockerd >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
  fi
  for _ in $(seq 30); do
    docker info >/dev/null 2>&1 && break
    if [ -n "$dockerd_pid" ] && ! kill -0 "$dockerd_pid" 2>/dev/null; then
      dockerd_pid=
      break
    fi
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    [ -f "$work/dockerd.log" ] && tail -n 20 "$work/dockerd.log" >&2
    die "no Docker engine can run on this machine: dockerd did not come up"
  fi
fi
docker info --format 'docker engine {{.ServerVersion}}: storage {{.Driver}}, cgroup v{{.CgroupVersion}}'

command -v debootstrap >/dev/null || apt_install debootstrap || die "could not install debootstrap"
command -v jq >/dev/null || apt_install jq || die "could not install jq"
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null || apt_install docker-compose; then
  compose=(docker-compose)
else
  echo "docker-smoke: no compose available, starting the nodes with docker run" >&2
fi

# --- Base images ----------------------------------------------------------------
# Streams a debootstrap tree into a local image, then drops the tree.
import_rootfs() {
  local dir=$1 tag=$2
  shift 2
  # Package lists are stale at once and only add size, as in debian:*-slim.
  rm -rf "$dir"/var/lib/apt/lists/*
  tar --numeric-owner --one-file-system -C "$dir" -c . | docker import "$@" - "$tag" >/dev/null
  rm -rf --one-file-system "$dir"
}

debootstrap_into() {
  local dir=$1
  shift
  echo "debootstrap $* bookworm (log: $dir.log)"
  if ! debootstrap "$@" bookworm "$dir" "$mirror" >"$dir.log" 2>&1; then
    tail -n 20 "$dir.log" >&2
    die "debootstrap failed"
  fi
}

if ! docker image inspect "$runtime_base" >/dev/null 2>&1; then
  debootstrap_into "$work/runtime" --variant=minbase
  import_rootfs "$work/runtime" "$runtime_base"
fi
docker run --rm "$runtime_base" true \
  || die "dockerd runs but cannot start containers on this machine"

# rustup picks the toolchain from the build context (rust-toolchain.toml), if any.
sysroot=$(cd "$src" && rustc --print sysroot)
rust_version=$(cd "$src" && rustc --version | cut -d' ' -f2)
builder_base=peerd-smoke/builder-base:bookworm-rust-$rust_version
if ! docker image inspect "$builder_base" >/dev/null 2>&1; then
  debootstrap_into "$work/builder" --variant=buildd --include=ca-certificates
  # The toolchain goes in without rustup, which would try to download; docs stay out.
  mkdir -p "$work/builder/usr/local/rust"
  tar -C "$sysroot" --exclude=./share -c . | tar -C "$work/builder/usr/local/rust" -x
  # Trust what the host trusts, so cargo reaches crates.io from inside the build
  # wherever the host does, e.g. behind a TLS-inspecting proxy.
  cp /etc/ssl/certs/ca-certificates.crt "$work/builder/etc/ssl/certs/ca-certificates.crt"
  # Same CARGO_HOME and PATH layout as the official rust images.
  import_rootfs "$work/builder" "$builder_base" \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
fi

# --- peerd image ----------------------------------------------------------------
docker build -f "$repo/Dockerfile" -t "$image" \
  --build-arg "BUILDER_IMAGE=$builder_base" \
  --build-arg "RUNTIME_IMAGE=$runtime_base" \
  "$src"

# --- Cluster --------------------------------------------------------------------
cluster_started=1
cluster_up

declare -a cid node_id
for n in 1 2 3; do
  wait_healthy "$n"
  cid[n]=$(cluster_cid "$n")
  node_id[n]=$(docker exec "${cid[n]}" peerd id --json | jq -er .node_id) \
    || die "could not read node$n's id"
  echo "node$n healthy, id ${node_id[n]}"
done

passed=0
failed=0
check() {
  local name=$1
  shift
  if "$@"; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

# Metrics from outside the containers: each node has a connection (node2
# and node3 to node1, which bootstrapped them).
command -v curl >/dev/null || apt_install curl || die "could not install curl"
scrape_connected() {
  local ip
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "${cid[$1]}")
  curl -fsS --max-time 5 "http://$ip:9733/metrics" | grep -q '^peerd_peers{state="connected"} [1-9]'
}
for n in 1 2 3; do
  check "scrape node$n:9733 from the host" scrape_connected "$n"
done

# Before any address is given: node3 reaches node2 by id alone, through
# what the bootstrap through node1 found.
check "ping node3 -> node2 by id (a lookup)" \
  timeout 60 docker exec "${cid[3]}" peerd ping "${node_id[2]}"

for a in 1 2 3; do
  for b in 1 2 3; do
    [ "$a" != "$b" ] || continue
    check "ping node$a -> node$b" timeout 60 docker exec "${cid[a]}" peerd ping "${node_id[b]}@node$b:7733"
  done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
