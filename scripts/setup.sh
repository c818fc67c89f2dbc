#!/usr/bin/env bash
# Installs every Debian package vigil needs to build and test. Idempotent: only what is
# missing is installed, so a second run is a no-op apart from a few dpkg queries.
set -euo pipefail

build_packages=(
  build-essential cmake pkg-config clang-format
  prometheus-cpp-dev libboost-dev libcpp-httplib-dev nlohmann-json3-dev libeigen3-dev
  libspdlog-dev catch2 libyaml-cpp-dev libre2-dev libssl-dev zlib1g-dev libisal-dev libbenchmark-dev
  libhowardhinnant-date-dev tzdata ca-certificates libpq-dev
  libsnappy-dev libprotobuf-dev protobuf-compiler
)
# Real servers and oracles the tests run against.
test_packages=(
  prometheus prometheus-alertmanager prometheus-node-exporter prometheus-pushgateway
  prometheus-redis-exporter prometheus-blackbox-exporter
  redis-server postgresql curl
  openssl systemd binutils python3-prometheus-client
  clang libclang-rt-14-dev lld libfaketime
)

want=("${build_packages[@]}")
if [[ "${1:-}" == "--with-test-servers" ]]; then
  want+=("${test_packages[@]}")
  # The deploy/ checks run on Node.js; a machine that has it from elsewhere keeps its own
  # (Debian's npm conflicts with other Node.js packagings).
  if ! command -v npm >/dev/null; then
    want+=(nodejs npm)
  fi
fi

missing=()
for pkg in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#want[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "setup: need root to install packages (run as root or with sudo)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Packaged servers must not start themselves as system services: the tests start their own
# instances on loopback ports with temporary data directories.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=1
fi
trap '[[ $created_policy == 1 ]] && rm -f "$policy"' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
