#!/usr/bin/env bash
# Build (once) a local stand-in for the Dockerfile's Python base image, from Debian packages.
#
# No container registry is needed: debootstrap fetches bookworm's python3 from the same Debian
# mirror apt uses, and `podman import` turns the tree into an image. Like the official image it
# has python, python3 and pip in /usr/local/bin. It is cached: an existing image is reused.
#
# Usage: scripts/container-base.sh [IMAGE]   (prints the image name on stdout when done)
set -euo pipefail

image="${1:-${BASE_IMAGE:-localhost/derivative-service-base:bookworm-python3-graphviz}}"
suite=bookworm

if podman image exists "$image"; then
  echo "base image $image: cached" >&2
  echo "$image"
  exit 0
fi

# The mirror apt is configured with (deb822 or one-line format), else debootstrap's default.
mirror="${DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
fi
if [[ -z "$mirror" && -f /etc/apt/sources.list ]]; then
  mirror="$(awk '$1 == "deb" && $3 ~ /^'"$suite"'$/ {print $2; exit}' /etc/apt/sources.list)"
fi

root="$(mktemp -d)"
log="$(mktemp)"
trap 'rm -rf "$root" "$log"' EXIT
trap 'exit 124' TERM INT

echo "base image $image: debootstrap $suite${mirror:+ from $mirror} (a few minutes, once)" >&2
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates,graphviz \
  "$suite" "$root" ${mirror:+"$mirror"} >"$log" 2>&1 || { tail -30 "$log" >&2; exit 1; }

# Where the official python image keeps its interpreter and pip.
for name in python3 python; do ln -sf /usr/bin/python3 "$root/usr/local/bin/$name"; done
for name in pip3 pip; do ln -sf /usr/bin/pip3 "$root/usr/local/bin/$name"; done
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/tmp/*

version="$(chroot "$root" /usr/local/bin/python --version 2>&1 | awk '{print $2}')"
tar -C "$root" --numeric-owner -cf - . | podman import --quiet \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL org.opencontainers.image.description=stand-in-base-debian-$suite-python-$version" \
  --change 'CMD ["python3"]' \
  - "$image" >/dev/null
echo "base image $image: built (Python $version)" >&2
echo "$image"
