#!/usr/bin/env bash
# Install the Debian packages the test suite uses: Fashion-MNIST's IDX files and Slurm + munge.
# Without root or apt-get this only says what is missing; the tests that need them then skip with that reason.
set -u
pkgs=(dataset-fashion-mnist slurm-wlm munge)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "system-deps: not root or no apt-get; missing: ${missing[*]} (tests needing them will skip)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || { apt-get update -q >/dev/null 2>&1; apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } \
  || echo "system-deps: could not install ${missing[*]}"
