#!/usr/bin/env bash
# Installs and starts the real services the tests need, on a fresh Debian 12 as root:
# Docker engine, host firewall tools, PostgreSQL, Debian's chromium, the JupyterHub
# proxy, and the workspace image. Every step checks first, so a second run is quick.
# Writes var/ci/env (SANDBOX_TEST_POSTGRES_URL), which .ci/run sources.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s (%s)\n' "$1" "$(date +%T)"; }

step "docker address pools"
# Single-host agreement networks are bridges from Docker's local address pools, whose
# built-in ones give about 30: /24s from 10.64.0.0/12 instead (4,096), apart from the
# swarm's overlays (10.128.0.0/12, below) and the doors (10.192.0.0/12). docker0 keeps
# 172.17.0.1 (bip), which the spawn benchmark's bare hub dials. Written before the engine
# is installed or started, which reads it then; an operator's own daemon.json is left as
# it is, and said to lack them.
daemon_json=/etc/docker/daemon.json
local_pool=10.64.0.0/12
if [ ! -e "$daemon_json" ]; then
  mkdir -p /etc/docker
  cat >"$daemon_json" <<EOF
{
  "bip": "172.17.0.1/16",
  "default-address-pools": [{"base": "$local_pool", "size": 24}]
}
EOF
elif ! grep -q "$local_pool" "$daemon_json"; then
  echo "note: $daemon_json has no default-address-pools with $local_pool (docs/en/operator.md, section 13)"
fi

step "apt packages"
packages=(docker.io debootstrap iptables postgresql chromium fonts-noto-cjk nginx-light python3-venv ca-certificates git make)
# A machine may already have node with its own npm (e.g. NodeSource, which conflicts with Debian's npm).
command -v npm >/dev/null || packages+=(nodejs npm)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

step "configurable-http-proxy"
command -v configurable-http-proxy >/dev/null || npm install -g --silent configurable-http-proxy

step "docker engine"
if ! docker info >/dev/null 2>&1; then
  mkdir -p var/ci
  nohup dockerd >var/ci/dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null || { tail -n 30 var/ci/dockerd.log; exit 1; }
fi
# An engine started before daemon.json had the pools keeps the built-in ones until its next
# start, which is left to the operator: restarting it stops every container it runs.
case "$(docker info -f '{{json .DefaultAddressPools}}')" in
  *"$local_pool"*) ;;
  *) echo "note: the running engine does not use $daemon_json's address pools yet: restart dockerd" ;;
esac

step "docker swarm (one node)"
# The Swarm backend's tests run on a real single-node swarm. Overlays (one per agreement)
# take /24s from 10.128.0.0/12 (4,096 of them), apart from Docker's local pools and from the
# agreements' door bridges (10.192.0.0/12, sandbox/workspaces/swarm_network.py).
if [ "$(docker info -f '{{.Swarm.LocalNodeState}}')" != active ]; then
  pools=(--default-addr-pool 10.128.0.0/12 --default-addr-pool-mask-length 24)
  # One address to advertise: the engine's choice, or the machine's first when it has several.
  docker swarm init "${pools[@]}" >/dev/null 2>&1 ||
    docker swarm init "${pools[@]}" --advertise-addr "$(hostname -I | awk '{print $1}')" >/dev/null
fi

step "postgresql"
cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
[ -n "$cluster" ] || { pg_createcluster 15 main; cluster="15 main"; }
# shellcheck disable=SC2086  # "<version> <name>" are two words on purpose
pg_ctlcluster $cluster status >/dev/null 2>&1 || pg_ctlcluster $cluster start
psql_admin() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtAc "$1"; }
[ "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname='sandbox'")" = 1 ] ||
  psql_admin "CREATE ROLE sandbox LOGIN PASSWORD 'sandbox' CREATEDB"
[ "$(psql_admin "SELECT 1 FROM pg_database WHERE datname='sandbox_test'")" = 1 ] ||
  psql_admin "CREATE DATABASE sandbox_test OWNER sandbox"
mkdir -p var/ci
echo "export SANDBOX_TEST_POSTGRES_URL=postgresql+psycopg://sandbox:sandbox@127.0.0.1:5432/sandbox_test" \
  >var/ci/env

step "python environment"
make install

step "workspace image"
images/build.sh

step "done"
