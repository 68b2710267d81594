#!/usr/bin/env bash
# Installs the Debian packages listed in scripts/test-packages.txt and the
# cargo tools the test command uses. Idempotent, and quiet when everything
# is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

mapfile -t wanted < <(grep -v '^[[:space:]]*#' scripts/test-packages.txt | awk 'NF {print $1}')
missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  # Postfix asks questions on install unless told not to.
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections || true
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The toolchain is not downloaded here: the test command uses only what the
# package registries serve. rustfmt and clippy come with the toolchain.
for tool in fmt clippy; do
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    echo "cargo $tool is missing: install it with your toolchain" >&2
    echo "(rustup component add rustfmt clippy, or Debian's rustfmt and rust-clippy packages)" >&2
    exit 1
  fi
done

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install -q --locked cargo-fuzz
fi
