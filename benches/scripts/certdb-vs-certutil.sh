#!/usr/bin/env bash
# Side by side: `msgcert list-certs` / `msgcert show-cert` on a certificate
# database of N certificates, and NSS `certutil -L` / `certutil -L -n` on an
# NSS (sql:) database holding the same certificates. Prints the mean time of
# each over RUNS runs and the msgcert/certutil ratio.
#
# Usage: benches/scripts/certdb-vs-certutil.sh [N=1000] [RUNS=20]
# Needs: openssl, certutil (libnss3-tools), cargo. MSGCERT=path uses that
# binary instead of building the release one.
set -euo pipefail
N=${1:-1000}
RUNS=${2:-20}
if [ -z "${MSGCERT:-}" ]; then
    root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
    target=${CARGO_TARGET_DIR:-$root/target}
    (cd "$root" && cargo build --quiet --release -p portcullis-msgcert)
    MSGCERT="$target/release/msgcert"
fi
msgcert=$(realpath "$MSGCERT")
unset CERT_PW_FILE MSGCERT_DIR

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

echo "making $N certificates with openssl..."
openssl ecparam -name prime256v1 -genkey -noout -out key.pem 2>/dev/null
: > bundle.pem
for i in $(seq 0 $((N - 1))); do
    openssl req -x509 -key key.pem -subj "/CN=host$i.example.com/O=Portcullis Bench/C=US" \
        -days 90 -out "c$i.pem" 2>/dev/null
    cat "c$i.pem" >> bundle.pem
done

echo "loading them into msgcert's database (one commit)..."
echo bench-password > pw
"$msgcert" generate-certDB -d db -W pw --insecure-fast-kdf > /dev/null
# The same N certificates under the same nicknames as in the NSS database:
# drop the default Server-Cert; the bundle's first certificate gets the
# alias given, the others their CN.
"$msgcert" remove-cert -d db -W pw Server-Cert > /dev/null
"$msgcert" add-cert -d db -W pw host0.example.com bundle.pem > /dev/null

echo "loading them into an NSS database (certutil -A each)..."
mkdir nss
certutil -N -d sql:nss --empty-password
for i in $(seq 0 $((N - 1))); do
    certutil -A -d sql:nss -n "host$i.example.com" -t ",," -i "c$i.pem"
done

# Sanity: both list every certificate.
m=$("$msgcert" list-certs -d db | tail -n 1)
c=$(certutil -L -d sql:nss | tail -n +5 | grep -c .)
echo "msgcert: $m; certutil: $c certificates"

mean_ms() { # RUNS command...
    local runs=$1; shift
    local start end
    start=$(date +%s%N)
    for _ in $(seq "$runs"); do "$@" > /dev/null; done
    end=$(date +%s%N)
    echo $(( (end - start) / runs / 1000 ))  # microseconds
}

pick="host$((N / 2)).example.com"
ml=$(mean_ms "$RUNS" "$msgcert" list-certs -d db)
cl=$(mean_ms "$RUNS" certutil -L -d sql:nss)
ms=$(mean_ms "$RUNS" "$msgcert" show-cert -d db "$pick")
cs=$(mean_ms "$RUNS" certutil -L -d sql:nss -n "$pick")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '%-28s %10s %10s %8s\n' "operation ($N certs)" "msgcert" "certutil" "ratio"
printf '%-28s %8sus %8sus %8s\n' "list-certs / certutil -L" "$ml" "$cl" "$(ratio "$ml" "$cl")"
printf '%-28s %8sus %8sus %8s\n' "show-cert / certutil -L -n" "$ms" "$cs" "$(ratio "$ms" "$cs")"
