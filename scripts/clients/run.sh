#!/usr/bin/env bash
# run.sh BOOTSTRAP
#
# Cross-language client check: every client produces records.json to a fresh
# 3-partition topic on the broker at BOOTSTRAP (host:port), consumes it back
# from the beginning and compares byte for byte; the two group checks
# (confluent-group, kafkajs-group) split 400 records of a fresh 4-partition
# topic between two members of one consumer group, then check the group's
# committed offsets with a third member. Prints one line per client,
# "PASS <client> N records" or "FAIL <client> reason", then a summary line
# "cross-language: N passed, N failed", and exits non-zero if any client
# failed. Each client is killed after 60 s.
#
# Clients: kcat, kafka-python, confluent-kafka, confluent-group (Debian
# packages kcat, python3-kafka, python3-confluent-kafka) and kafkajs,
# kafkajs-group (npm ci in ./node).
#
# Environment:
#   XLANG_CLIENTS  space-separated subset to run (default: all six)
#   XLANG_RUN_ID   topic suffix (default: seconds since the epoch), so that
#                  reruns against the same broker get fresh topics
#                  xlang-<client>-<run id>
#   XLANG_TIMEOUT  per-client limit in seconds (default 60)
set -euo pipefail

if [[ $# -ne 1 || $1 != *:* ]]; then
	echo "usage: $0 HOST:PORT" >&2
	exit 2
fi
bootstrap=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
clients=${XLANG_CLIENTS:-kcat kafka-python confluent-kafka kafkajs confluent-group kafkajs-group}
run_id=${XLANG_RUN_ID:-$(date +%s)}
limit=${XLANG_TIMEOUT:-60}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# check_cmd CLIENT: sets the array cmd to the check's command line.
check_cmd() {
	case $1 in
	kcat) cmd=(bash "$here/check_kcat.sh") ;;
	kafka-python) cmd=(/usr/bin/python3 "$here/check_kafka_python.py") ;;
	confluent-kafka) cmd=(/usr/bin/python3 "$here/check_confluent.py") ;;
	kafkajs) cmd=(node "$here/check_kafkajs.js") ;;
	confluent-group) cmd=(/usr/bin/python3 "$here/check_confluent_group.py") ;;
	kafkajs-group) cmd=(node "$here/check_kafkajs_group.js") ;;
	*) return 1 ;;
	esac
}

failed=0
npass=0
nfail=0
start_all=$SECONDS
for client in $clients; do
	cmd=()
	if ! check_cmd "$client"; then
		echo "FAIL $client unknown client"
		failed=1
		nfail=$((nfail + 1))
		continue
	fi
	topic="xlang-$client-$run_id"
	t0=$(date +%s.%N)
	rc=0
	timeout -k 5 "$limit" "${cmd[@]}" "$bootstrap" "$topic" </dev/null >"$logs/$client.out" 2>"$logs/$client.err" || rc=$?
	took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	line=$(grep -E "^(PASS|FAIL) $client( |$)" "$logs/$client.out" | tail -n1 || true)
	if [[ $rc -eq 0 && $line == "PASS "* ]]; then
		echo "$line"
		npass=$((npass + 1))
	else
		failed=1
		nfail=$((nfail + 1))
		if [[ $rc -eq 124 || $rc -eq 137 ]]; then
			echo "FAIL $client timed out after ${limit}s"
		elif [[ $line == "FAIL "* ]]; then
			echo "$line"
		else
			echo "FAIL $client exited with status $rc without a verdict"
		fi
		{
			echo "--- $client (topic $topic) stdout:"
			sed 's/^/    /' "$logs/$client.out"
			echo "--- $client stderr (last 40 lines):"
			tail -n 40 "$logs/$client.err" | sed 's/^/    /'
		} >&2
	fi
	echo "    $client took ${took}s (topic $topic)" >&2
done
echo "    cross-language check took $((SECONDS - start_all))s" >&2
echo "cross-language: $npass passed, $nfail failed"
exit "$failed"
