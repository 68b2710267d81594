#!/usr/bin/env bash
# Side by side: libwrap's hosts_ctl() against portcullis-accessfilter
# (`filtertest --batch --no-lookups`) on the same address-only rules and the
# same queries.
#
#   benches/scripts/accessfilter-vs-libwrap.sh [RULES] [QUERIES] [LIBWRAP_QUERIES]
#
# Defaults: 1000 rules, 100000 queries for filtertest, 20000 for libwrap
# (libwrap rereads and rescans its tables on every call, so it gets fewer
# queries; both rates are per second). Needs cc, libwrap0-dev and a built
# filtertest (cargo build --release -p portcullis-filtertest).
set -euo pipefail

rules=${1:-1000}
queries=${2:-100000}
wrap_queries=${3:-20000}
root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
filtertest=$target/release/filtertest
if [ ! -x "$filtertest" ]; then
    (cd "$root" && cargo build --release -p portcullis-filtertest)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Rules: the same mix the criterion bench uses (addresses, /24, net/mask,
# prefixes), for imap and pop; one deny-all rule.
awk -v n="$rules" 'BEGIN {
    srand(7);
    split("imap|pop|imap, pop|ALL", svc, "|");
    for (i = 0; i < n; i++) {
        a = int(rand() * 223) + 1; b = int(rand() * 256); c = int(rand() * 256); d = int(rand() * 254) + 1;
        m = i % 5;
        if (m < 2) p = a "." b "." c "." d;
        else if (m == 2) p = a "." b "." c ".0/24";
        else if (m == 3) p = a "." b "." c ".0/255.255.255.0";
        else p = a "." b "." c ".";
        print svc[i % 4 + 1] ": " p;
    }
}' > "$work/allow"
echo "ALL: ALL" > "$work/deny"
awk -v n="$queries" 'BEGIN {
    srand(11);
    for (i = 0; i < n; i++)
        print "imap " int(rand() * 256) "." int(rand() * 256) "." int(rand() * 256) "." int(rand() * 256);
}' > "$work/queries"
head -n "$wrap_queries" "$work/queries" > "$work/wrap-queries"

cat > "$work/wrap.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <tcpd.h>
int allow_severity = 0, deny_severity = 0;
int main(int argc, char **argv) {
    static char line[256];
    static char addrs[200000][32];
    int n = 0, granted = 0;
    FILE *q = fopen(argv[3], "r");
    while (n < 200000 && fgets(line, sizeof line, q)) {
        char *a = strchr(line, ' ');
        if (!a) continue;
        a[strcspn(a, "\n")] = 0;
        snprintf(addrs[n++], 32, "%s", a + 1);
    }
    hosts_allow_table = argv[1];
    hosts_deny_table = argv[2];
    static char verdict[200000];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        verdict[i] = hosts_ctl("imap", STRING_UNKNOWN, addrs[i], STRING_UNKNOWN) != 0;
        granted += verdict[i];
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    FILE *out = fopen(argv[4], "w");
    for (int i = 0; i < n; i++)
        fputs(verdict[i] ? "granted\n" : "denied\n", out);
    fclose(out);
    printf("%d %d %.6f\n", n, granted, s);
    return 0;
}
C
cc -O2 -o "$work/wrap" "$work/wrap.c" -lwrap

read -r wn wgranted wsecs < <("$work/wrap" "$work/allow" "$work/deny" "$work/wrap-queries" "$work/wrap-verdicts")

start=$(date +%s.%N)
"$filtertest" --allow "$work/allow" --deny "$work/deny" --no-lookups --batch < "$work/queries" > "$work/verdicts"
end=$(date +%s.%N)
fsecs=$(echo "$end - $start" | bc -l)
fgranted=$(grep -c '^granted$' "$work/verdicts" || true)

# The same answer to every query both saw.
head -n "$wn" "$work/verdicts" > "$work/ours"
if ! cmp -s "$work/ours" "$work/wrap-verdicts"; then
    line=$(cmp "$work/ours" "$work/wrap-verdicts" | awk '{print $NF}')
    echo "MISMATCH at query $line: $(sed -n "${line}p" "$work/wrap-queries")" >&2
    exit 1
fi

wrate=$(echo "$wn / $wsecs" | bc -l)
frate=$(echo "$queries / $fsecs" | bc -l)
printf 'rules: %d (address-only), deny: ALL: ALL; all %d shared answers agree\n' "$rules" "$wn"
printf 'libwrap hosts_ctl:            %8d queries in %8.3f s = %12.0f decisions/s (granted %d)\n' "$wn" "$wsecs" "$wrate" "$wgranted"
printf 'filtertest --batch (process): %8d queries in %8.3f s = %12.0f decisions/s (granted %d)\n' "$queries" "$fsecs" "$frate" "$fgranted"
printf 'ratio: %.0fx (filtertest includes process start, parsing, reading and printing)\n' "$(echo "$frate / $wrate" | bc -l)"
