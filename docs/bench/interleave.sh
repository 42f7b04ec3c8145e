#!/usr/bin/env bash
# interleave.sh FIXTURE_DIR BINARY...: each strata binary through the side-by-side benchmark's steps (a fresh
# repository, the four snapshots, a restore of the last to a new file, fsck --read-data), the binaries taking turns,
# twice. Comparing two builds this way cancels most of the machine's drift; compare within one run of it.
# Prints, per binary and round, "step wall-seconds/peak-RSS-KiB" for every step.
# usage: bash docs/bench/interleave.sh /work/bench/fixture /tmp/old/strata .build-static/release/strata
set -euo pipefail
fix=$1; shift
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for round in 1 2; do
  for b in "$@"; do
    r=$work/repo
    rm -rf "$r" "$work/out.img"
    "$b" init -q "$r"
    line="$b:"
    for d in day1 day2-rebuild day2-blocks day2-scatter; do
      cat "$fix/$d.img" > /dev/null
      t=$({ /usr/bin/time -f "%e/%M" "$b" -r "$r" snap -q "$fix/$d.img" --volume d > /dev/null; } 2>&1)
      line="$line $d $t"
    done
    sync
    t=$({ /usr/bin/time -f "%e/%M" "$b" -r "$r" restore -q latest "$work/out.img"; } 2>&1); line="$line restore $t"
    t=$({ /usr/bin/time -f "%e/%M" "$b" -r "$r" fsck -q --read-data; } 2>&1); line="$line fsck $t"
    echo "$line"
  done
done
