#!/usr/bin/env bash
# Side by side on this machine, in one run: imapd, Dovecot in its
# high-performance mode (service_count = 0) with an LDAP passdb, and
# nginx's mail proxy when it is installed. All three on ECDSA P-256
# certificates, TLS 1.3, clients and servers sharing the machine's cores.
#
#   benches/scripts/imapd-vs-dovecot.sh [SECONDS] [IDLE] [SESSIONS]
#
# SECONDS per timed run (default 10), IDLE connections held per server for
# the memory figure (default 10000), SESSIONS logged-in proxied sessions
# (default 1000). Prints Markdown tables: rates with server CPU ms per
# operation and imapd's figure as a multiple of each peer's.
#
# Needs the test packages (scripts/install-test-deps.sh). nginx and its mail
# module are installed when missing if this runs as root (Debian packages
# nginx and libnginx-mod-mail; their service is not started); set
# NO_NGINX=1 to leave nginx out. All traffic stays on 127.0.0.1 and every
# server is stopped by its PID when the run ends.
set -euo pipefail

seconds=${1:-10}
idle=${2:-10000}
sessions=${3:-1000}
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}

nginx_args=()
if [ "${NO_NGINX:-0}" = 1 ]; then
    nginx_args=(--no-nginx)
elif [ ! -e /usr/lib/nginx/modules/ngx_mail_module.so ] && [ "$(id -u)" = 0 ]; then
    echo "installing nginx and its mail module" >&2
    # Keep the package scripts from starting the system's nginx service.
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        nginx libnginx-mod-mail >/dev/null
    rm -f /usr/sbin/policy-rc.d
    trap - EXIT
fi

(cd "$root" && cargo build --release --locked -p portcullis-imapd -p portcullis-benches \
    --bin imapd --bin imap-side-by-side)

# Ten thousand idle connections need as many descriptors in the client and
# in each server (the servers inherit this limit).
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" -lt $((idle + sessions + 2048)) ]; then
    echo "the descriptor limit $(ulimit -n) is too low for $idle idle connections" >&2
    exit 1
fi

"$target/release/imap-side-by-side" --imapd "$target/release/imapd" \
    --seconds "$seconds" --idle "$idle" --sessions "$sessions" "${nginx_args[@]}"
