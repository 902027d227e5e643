#!/usr/bin/env bash
# Builds the workspace image offline: the wheels named in images/requirements.lock are
# downloaded on the host into images/wheelhouse/, each checked against the lock's hashes
# (containers cannot reach a package index), and installed from there with the same check.
# The base image is $BASE, or python:3.11-slim-bookworm if present locally, or else a Debian
# bookworm rootfs made with debootstrap (cached in images/rootfs/) when no registry is reachable.
# Skips the build when the image already carries the hash of its inputs. Prints the image's ID;
# its labels sandbox.inputs and sandbox.lock (the lock's SHA-256) say what it was built from.
# Usage: images/build.sh [TAG]        (default $SANDBOX_WORKSPACE_IMAGE or sandbox-workspace:latest)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
image=${1:-${SANDBOX_WORKSPACE_IMAGE:-sandbox-workspace:latest}}
pip=("${PYTHON:-$root/.venv/bin/python}" -m pip)
wheelhouse=$here/wheelhouse
cd "$here"

# The lock is resolved for bookworm's python3 3.11.2 and glibc 2.36 (make lock): wheels for
# this host's own Python or a newer glibc could refuse to run there. A new lock starts an
# empty wheelhouse, so nothing but the locked files goes into the image.
platforms=(--platform manylinux2014_x86_64)
for glibc in $(seq 17 36); do platforms+=(--platform "manylinux_2_${glibc}_x86_64"); done
if ! cmp -s requirements.lock "$wheelhouse/requirements.lock"; then
  rm -rf "$wheelhouse" && mkdir -p "$wheelhouse"
  "${pip[@]}" download -q --require-hashes --only-binary=:all: --python-version 3.11.2 \
    --implementation cp "${platforms[@]}" -d "$wheelhouse" -r requirements.lock
  cp requirements.lock "$wheelhouse/requirements.lock"
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
    sha256sum Dockerfile requirements.lock
    docker image inspect -f '{{.Id}}' "$BASE"
    cd "$root" && find pyproject.toml sandbox query_guard export_review hub_config -type f \
      -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
)
lock=$(sha256sum requirements.lock | cut -d' ' -f1)
if [ "$(docker image inspect -f '{{index .Config.Labels "sandbox.inputs"}}' "$image" 2>/dev/null)" \
     = "$inputs" ]; then
  echo "$image is up to date ($inputs): $(docker image inspect -f '{{.Id}}' "$image")"
  exit 0
fi

# The platform's own package (with query_guard.client) goes in without its server dependencies,
# built with the locked setuptools of the platform's environment (make install).
rm -rf "$wheelhouse/local"
"${pip[@]}" wheel -q --no-deps --no-build-isolation -w "$wheelhouse/local" "$root"

DOCKER_BUILDKIT=0 docker build -q --build-arg "BASE=$BASE" --label "sandbox.inputs=$inputs" \
  --label "sandbox.lock=$lock" -t "$image" . >/dev/null
echo "built $image from $BASE ($inputs, lock $lock): $(docker image inspect -f '{{.Id}}' "$image")"
