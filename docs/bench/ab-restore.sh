#!/usr/bin/env bash
# ab-restore.sh REPO SNAPSHOT ROUNDS BINARY...: restores of one snapshot into a new file, the strata binaries taking
# turns ROUNDS times (comparing builds this way cancels most of the machine's drift). Prints, per run, the binary,
# wall seconds, user and system CPU seconds and peak RSS.
# usage: bash docs/bench/ab-restore.sh /tmp/r4 37f62666dec6 8 /tmp/old/strata .build-static/release/strata
set -euo pipefail
repo=$1 snap=$2 rounds=$3; shift 3
out=$(mktemp -u "${TMPDIR:-/tmp}/ab-restore.XXXXXX.img")
trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
  for b in "$@"; do
    rm -f "$out"; sync; sleep 1
    printf "%-40s " "$b"
    /usr/bin/time -f "%e s  %U u  %S s  %M KB" "$b" -r "$repo" restore -q "$snap" "$out" 2>&1
  done
done
