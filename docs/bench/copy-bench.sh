#!/usr/bin/env bash
# copy-bench.sh REPO ROUNDS BINARY...: times copy (into a new repository sharing chunking), export and import of
# REPO's latest snapshot, the binaries taking turns, ROUNDS times. Prints wall s / user s / system s / peak KiB per step.
# usage: bash docs/bench/copy-bench.sh /tmp/day1-repo 3 /tmp/old/strata .build-static/release/strata
# (a repository holding one snapshot of the peer-bench fixture's day1.img: strata init R && strata -r R snap day1.img)
set -euo pipefail
repo=$1; rounds=$2; shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t() { { /usr/bin/time -f "%e/%U/%S/%M" "$@" > /dev/null; } 2>&1; }
for _ in $(seq "$rounds"); do
  for b in "$@"; do
    rm -rf "$work"/*
    "$b" init -q "$work/target" --copy-chunker-from "$repo"
    c=$(t "$b" -r "$repo" copy -q latest --to "$work/target")
    e=$(t "$b" -r "$repo" export -q latest "$work/b.bundle")
    "$b" init -q "$work/imported"
    i=$(t "$b" -r "$work/imported" import -q "$work/b.bundle")
    echo "$(basename "$b"): copy $c export $e import $i"
  done
done
