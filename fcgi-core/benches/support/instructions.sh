#!/bin/sh
# Instructions per call of a benchmark's unit of work, counted by callgrind (deterministic:
# the same on a loaded or an idle machine). Needs valgrind. Run from the workspace root:
#
#   sh fcgi-core/benches/support/instructions.sh BENCH_TARGET CRITERION_FILTER FUNCTION
#   sh fcgi-core/benches/support/instructions.sh decode 'typical_request/httparse$' httparse_head
#   sh fcgi-core/benches/support/instructions.sh decode 'typical_request/server_connection_keepalive$' server_receive
#
# FUNCTION is a function of the benchmark file marked #[inline(never)].
set -eu
target=$1 filter=$2 func=$3
cargo bench -p fcgi-core --bench "$target" --no-run >/dev/null 2>&1
bin=$(ls -t target/release/deps/"$target"-* | grep -v '\.d$' | head -n 1)
out=$(mktemp)
valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --bench --profile-time 1 "$filter" >/dev/null 2>&1
callgrind_annotate --tree=caller --inclusive=yes "$out" 2>/dev/null | awk -v f="::$func " '
    /^ *[0-9,]+ .*< / { line = $0; sub(/.*\(/, "", line); sub(/x\).*/, "", line); gsub(",", "", line); calls += line }
    /^ *[0-9,]+ .*\* / { if (index($0, f)) { n = $1; gsub(",", "", n); printf "%s: %.0f instructions per call (%d calls)\n", substr(f, 3, length(f) - 3), n / calls, calls; exit } calls = 0 }
    /^$/ { calls = 0 }'
rm -f "$out"
