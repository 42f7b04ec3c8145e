#!/usr/bin/env bash
# restore-after-snapshots.sh FIXTURE_DIR ROUNDS BINARY...: the side-by-side benchmark's restore in its own situation,
# the strata binaries taking turns ROUNDS times: per binary a fresh repository, the four snapshots of the fixture's
# images, sync, then a timed restore of the latest to a new file (the snapshots have just dropped their packs from
# the page cache, and on a VM whose host takes free memory back much of the memory the restore touches is cold).
# Prints, per run, the binary, wall seconds, user and system CPU seconds, peak RSS, and how much of the restored
# image is left in the page cache (fincore). WORK (default /var/tmp) holds the repository and the output.
# usage: bash docs/bench/restore-after-snapshots.sh /work/bench/fixture 4 /tmp/old/strata .build-static/release/strata
set -euo pipefail
fix=$1 rounds=$2; shift 2
work=$(mktemp -d "${WORK:-/var/tmp}/restore-after-snapshots.XXXXXX")
trap 'rm -rf "$work"' EXIT
r=$work/repo o=$work/out.img
for round in $(seq "$rounds"); do
  for b in "$@"; do
    rm -rf "$r" "$o"
    "$b" init -q "$r"
    for d in day1 day2-rebuild day2-blocks day2-scatter; do
      cat "$fix/$d.img" > /dev/null
      "$b" -r "$r" snap -q "$fix/$d.img" --volume d > /dev/null
    done
    sync
    printf "%-40s " "$b"
    /usr/bin/time -f "%e s  %U u  %S s  %M KB" "$b" -r "$r" restore -q latest "$o" 2>&1 | tr '\n' ' '
    echo " cached after: $(fincore -b -n "$o" | cut -d' ' -f1) B"
  done
done
