#!/usr/bin/env bash
# One phase of `make demo` (issue 28): run a command with all its output appended to a log file and
# print one line, `== NAME: SUMMARY, N s`. SUMMARY joins the parts of the phase's output that match
# PATTERN (an extended regex, as grep -oE; empty or no match: "done"). On failure: the phase's last lines, then the log's path,
# on stderr, and the command's exit code. Plain bash: the first phase builds the venvs.
#
#   stack/phase.sh NAME LOG PATTERN COMMAND [ARG...]
set -uo pipefail

if [ $# -lt 4 ]; then
	echo "usage: $0 NAME LOG PATTERN COMMAND [ARG...]" >&2
	exit 2
fi
name=$1 log=$2 pattern=$3
shift 3

mkdir -p "$(dirname "$log")"
touch "$log"
first=$(($(wc -l <"$log") + 2))
echo "=== $name: $* ($(date -u +%FT%TZ))" >>"$log"
start=$(date +%s%N)
"$@" </dev/null >>"$log" 2>&1
rc=$?
seconds=$(awk -v ns=$(($(date +%s%N) - start)) 'BEGIN { printf "%.0f", ns / 1e9 }')

if [ "$rc" -ne 0 ]; then
	{
		echo "== $name: FAILED (exit $rc) after $seconds s; its last lines:"
		tail -n "+$first" "$log" | tail -n 15 | sed 's/^/   /'
		echo "error: $name failed; the whole output is in $log"
	} >&2
	exit "$rc"
fi

summary=""
if [ -n "$pattern" ]; then
	# The parts of this phase's lines that match, colour codes removed, runs of blanks squeezed, each once, in order.
	summary=$(tail -n "+$first" "$log" | sed 's/\x1b\[[0-9;]*m//g' | { grep -oE -- "$pattern" || true; } |
		sed -E 's/^[[:space:]]+//; s/[[:space:]]+$//; s/[[:space:]]+/ /g' | awk 'NF && !seen[$0]++' |
		paste -sd ';' | sed 's/;/; /g')
fi
echo "== $name: ${summary:-done}, $seconds s"
