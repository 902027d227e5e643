#!/usr/bin/env bash
# Builds the workspace image offline: wheels are downloaded on the host into
# images/wheelhouse/ (containers cannot reach a package index), and the base image is
# $BASE, or python:3.11-slim-bookworm if present locally, or else a Debian bookworm
# rootfs made with debootstrap (cached in images/rootfs/) when no registry is reachable.
# Skips the build when the image already carries the hash of its inputs.
# Usage: images/build.sh [TAG]        (default $SANDBOX_WORKSPACE_IMAGE or sandbox-workspace:latest)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
image=${1:-${SANDBOX_WORKSPACE_IMAGE:-sandbox-workspace:latest}}
pip=("${PYTHON:-$root/.venv/bin/python}" -m pip)
wheelhouse=$here/wheelhouse
cd "$here"

# Debian bookworm's python3 is 3.11.2: wheels resolved for a newer 3.11 can refuse it.
if [ "$(cat "$wheelhouse/requirements.txt" 2>/dev/null)" != "$(cat requirements.txt)" ]; then
  "${pip[@]}" download -q --python-version 3.11.2 --only-binary=:all: \
    -d "$wheelhouse" -r requirements.txt
  cp requirements.txt "$wheelhouse/requirements.txt"
fi

if [ -z "${BASE:-}" ]; then
  if docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1; then
    BASE=python:3.11-slim-bookworm
  else
    BASE=sandbox-base:bookworm
    if ! docker image inspect "$BASE" >/dev/null 2>&1; then
      tarball=rootfs/bookworm-minbase.tar
      if [ ! -s "$tarball" ]; then
        rm -rf rootfs/tree && mkdir -p rootfs
        debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
          bookworm rootfs/tree "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
        tar -C rootfs/tree -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf rootfs/tree
      fi
      docker import "$tarball" "$BASE" >/dev/null
    fi
  fi
fi

# Inputs that change the image: the recipe, the stack, the base and the project's sources.
inputs=$(
  {
    sha256sum Dockerfile requirements.txt
    docker image inspect -f '{{.Id}}' "$BASE"
    cd "$root" && find pyproject.toml sandbox query_guard export_review hub_config -type f \
      -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
)
if [ "$(docker image inspect -f '{{index .Config.Labels "sandbox.inputs"}}' "$image" 2>/dev/null)" \
     = "$inputs" ]; then
  echo "$image is up to date ($inputs)"
  exit 0
fi

# The platform's own package (with query_guard.client) goes in without its server dependencies.
rm -rf "$wheelhouse/local"
"${pip[@]}" wheel -q --no-deps -w "$wheelhouse/local" "$root"

DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$BASE" --label "sandbox.inputs=$inputs" \
  -t "$image" . >/dev/null
echo "built $image from $BASE ($inputs)"
