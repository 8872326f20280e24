#!/usr/bin/env bash
# check_kcat.sh BOOTSTRAP TOPIC
#
# kcat (librdkafka) round trip of records.json: produce every record, consume
# the topic from the beginning, compare byte for byte (per partition, in
# offset order, headers included). Prints one line: "PASS kcat N records" or
# "FAIL kcat reason"; details go to stderr.
#
# kcat has no admin API, so the topic is auto-created by a metadata request
# (kcat -L -t TOPIC). If the broker auto-creates it with fewer partitions than
# records.json uses, record partitions are mapped modulo the real count.
# Each record is produced by its own kcat invocation, so that -p (partition),
# -H (headers) and -Z (null value) apply to that record only.
set -euo pipefail

client=kcat
if [[ $# -ne 2 ]]; then
	echo "usage: $0 BOOTSTRAP TOPIC" >&2
	exit 2
fi
bootstrap=$1
topic=$2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=${XLANG_PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() {
	echo "FAIL $client $*"
	[[ -s $work/kcat.log ]] && tail -n 40 "$work/kcat.log" >&2
	exit 1
}

# last_error: the last error librdkafka or kcat logged, for FAIL lines.
last_error() {
	grep -aE '^%[0-3]\||^% ERROR' "$work/kcat.log" 2>/dev/null | tail -n1 |
		sed -E 's/^%[0-3]\|[0-9.]+\|([A-Z]+)\|[^|]*\| \[[^]]*\]: /\1 /; s/^% ERROR: //' || true
}

command -v kcat >/dev/null || fail "kcat not installed"

# Any string absent from every key and value (xlang.py checks that).
keydelim='<<weir-xlang-key-delimiter>>'
msgdelim='<<weir-xlang-record-delimiter>>'
common=(-b "$bootstrap" -X socket.timeout.ms=10000 -m 5)

# 1. Auto-create the topic and learn its partition count (bounded: 20 s).
nparts=0
while [[ $SECONDS -lt 20 ]]; do
	if timeout 10 kcat "${common[@]}" -L -t "$topic" -J >"$work/meta.json" 2>>"$work/kcat.log"; then
		nparts=$("$py" - "$work/meta.json" "$topic" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
for t in doc.get("topics", []):
    if t.get("topic") == sys.argv[2] and not t.get("error"):
        ps = t.get("partitions", [])
        print(len(ps) if ps and all(p.get("leader", -1) >= 0 for p in ps) else 0)
        break
else:
    print(0)
EOF
)
		[[ $nparts -gt 0 ]] && break
	fi
	sleep 0.5
done
if [[ $nparts -eq 0 ]]; then
	if grep -q '^% ERROR' "$work/kcat.log" 2>/dev/null; then
		fail "metadata for $topic: $(grep '^% ERROR' "$work/kcat.log" | tail -n1 | sed 's/^% ERROR: //')"
	fi
	fail "topic $topic was not auto-created (kcat cannot create topics; the broker must allow auto-creation)"
fi
echo "kcat: topic $topic has $nparts partitions" >&2

# 2. Produce, one kcat per record, idempotent with acks=all.
n=$("$py" "$here/xlang.py" kcat-prepare "$work" "$nparts" "$keydelim")
for msg in "$work"/rec-*.msg; do
	args=()
	mapfile -d '' args <"${msg%.msg}.args"
	if ! timeout 40 kcat "${common[@]}" -P -t "$topic" -K "$keydelim" -D "$msgdelim" \
		-X enable.idempotence=true -X acks=all -X message.timeout.ms=30000 \
		"${args[@]}" <"$msg" 2>>"$work/kcat.log"; then
		fail "produce of $(basename "$msg" .msg) failed: $(last_error)"
	fi
done

# 3. Consume all partitions from the beginning; -e exits at the end of all.
# (No -q: librdkafka's own errors then reach kcat.log.)
fmt=$("$py" "$here/xlang.py" kcat-format)
crc=0
timeout 30 kcat "${common[@]}" -C -t "$topic" -o beginning -e \
	-f "$fmt" >"$work/out.bin" 2>>"$work/kcat.log" || crc=$?
if [[ $crc -ne 0 ]]; then
	read_n=$(grep -ac '^@@WEIR-XLANG ' "$work/out.bin" || true)
	if [[ $crc -eq 124 ]]; then
		why="did not reach the end of every partition within 30s"
	else
		why="failed (exit $crc)"
	fi
	err=$(last_error)
	fail "consume $why after $read_n of $n records${err:+; last error: $err}"
fi

# 4. Compare (prints the PASS/FAIL line).
if ! "$py" "$here/xlang.py" kcat-verify "$work/out.bin" "$nparts" "$client"; then
	[[ -s $work/kcat.log ]] && tail -n 40 "$work/kcat.log" >&2
	exit 1
fi
echo "kcat: produced $n records" >&2
