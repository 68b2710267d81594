#!/usr/bin/env bash
# Side by side: 10 KB messages over SESSIONS concurrent SMTP sessions, each
# reused for PER messages, sent directly to a scratch Postfix and through
# smtpd (AUTH PLAIN once per session, XCLIENT hand-off, the message scanned
# and relayed) into the same Postfix. Prints messages/s of each, the ratio,
# and smtpd's CPU time per message (user + system, from /proc).
#
#   benches/scripts/smtpd-vs-postfix.sh [PER=200] [SESSIONS=8]
#
# Needs postfix, smtp-sink (Debian package postfix), python3, root (Postfix's
# data directory belongs to the postfix user). SMTPD=path uses that binary
# (and MSGCERT=path that msgcert) instead of building the release ones.
# Loopback only; every process it
# starts is stopped by its PID on exit; each client run is bounded by
# `timeout`.
set -euo pipefail

per=${1:-200}
sessions=${2:-8}
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
if [ -z "${SMTPD:-}" ] || [ -z "${MSGCERT:-}" ]; then
    target=${CARGO_TARGET_DIR:-$root/target}
    (cd "$root" && cargo build --quiet --release -p portcullis-smtpd -p portcullis-msgcert)
    SMTPD="$target/release/smtpd"
    MSGCERT="$target/release/msgcert"
fi
smtpd_bin=$(realpath "$SMTPD")
msgcert=$(realpath "$MSGCERT")
master_bin="$(postconf -d -h daemon_directory)/master"

work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    timeout 20 postfix -c "$work/etc" stop >/dev/null 2>&1 || true
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
    for _ in $(seq 1 300); do
        if python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "port $1 never opened" >&2
    tail -n 20 "$work"/*.log "$work/maillog" >&2 2>/dev/null || true
    exit 1
}
pf_port=$(free_port)
sink_port=$(free_port)
smtp_port=$(free_port)

mkdir -p "$work/etc" "$work/data" "$work/queue" "$work/smtpd"
chown postfix:postfix "$work/data"
cat > "$work/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $work/queue
data_directory = $work/data
maillog_file = $work/maillog
maillog_file_prefixes = $work
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.portcullis.test
mydestination =
inet_interfaces = 127.0.0.1
mynetworks = 127.0.0.1/32
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_sasl_auth_enable = yes
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
default_transport = smtp:[127.0.0.1]:$sink_port
relay_transport = smtp:[127.0.0.1]:$sink_port
smtp_dns_support_level = disabled
smtp_host_lookup = native
smtpd_peername_lookup = no
biff = no
alias_maps =
alias_database =
local_recipient_maps =
EOF
cat > "$work/etc/master.cf" <<EOF
127.0.0.1:$pf_port inet n - n - 50 smtpd
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
EOF
timeout 60 postfix -c "$work/etc" check
smtp-sink -u postfix "127.0.0.1:$sink_port" 100 >/dev/null 2>&1 &
pids+=($!)
MAIL_CONFIG="$work/etc" "$master_bin" -c "$work/etc" -d >"$work/master.log" 2>&1 &
pids+=($!)
wait_port "$pf_port"
wait_port "$sink_port"

# smtpd: a certificate database (it always has TLS), a users file, AUTH
# without TLS (a loopback benchmark), the relay.
echo bench-db-password > "$work/dbpw"
"$msgcert" generate-certDB -d "$work/smtpd/certdb" -W "$work/dbpw" --insecure-fast-kdf >/dev/null
echo "bench:{PLAIN}bench-pw::::::mail=bench@example.com" > "$work/smtpd/users"
cat > "$work/smtpd/portcullis.toml" <<EOF
[local]
userfile = "users"
[service]
listenaddr = "127.0.0.1"
plaintextmincipher = 0
[service.smtp]
port = $smtp_port
sslport = 0
maxmessages = 100000
[mmp]
smtprelays = "127.0.0.1:$pf_port"
EOF
RUST_LOG=warn "$smtpd_bin" --config "$work/smtpd/portcullis.toml" 2>"$work/smtpd.log" &
smtpd_pid=$!
pids+=("$smtpd_pid")
wait_port "$smtp_port"

cat > "$work/load.py" <<'PY'
import smtplib, sys, threading, time
port, sessions, per, auth = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "auth"
body = b"Subject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * 130   # ~10 KB
failures = []
def worker(i):
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=60)
        s.ehlo("bench.example")
        if auth:
            s.login("bench", "bench-pw")
        for n in range(per):
            s.sendmail("bench@example.com", [f"r{i}-{n}@elsewhere.example"], body)
        s.quit()
    except Exception as e:
        failures.append(repr(e))
threads = [threading.Thread(target=worker, args=(i,)) for i in range(sessions)]
start = time.monotonic()
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.monotonic() - start
if failures:
    raise SystemExit(f"{len(failures)} sessions failed: {failures[0]}")
print(f"{sessions * per / elapsed:.1f}")
PY

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
total=$((per * sessions))
echo "$sessions sessions x $per messages of 10 KB"
# A short warm-up of both paths, then the measured runs.
timeout 300 python3 "$work/load.py" "$pf_port" 2 5 plain >/dev/null
timeout 300 python3 "$work/load.py" "$smtp_port" 2 5 auth >/dev/null
direct=$(timeout 600 python3 "$work/load.py" "$pf_port" "$sessions" "$per" plain)
before=$(cpu_ticks "$smtpd_pid")
proxied=$(timeout 600 python3 "$work/load.py" "$smtp_port" "$sessions" "$per" auth)
after=$(cpu_ticks "$smtpd_pid")
echo "direct to Postfix:     $direct msgs/s"
echo "through smtpd:         $proxied msgs/s"
python3 -c "print(f'ratio smtpd/direct:    {$proxied / $direct:.3f}')"
python3 -c "print(f'smtpd CPU per message: {($after - $before) * 1000.0 / $hz / $total:.3f} ms')"
