#!/usr/bin/env bash
# ab-restore.sh REPO SNAPSHOT ROUNDS BINARY...: restores of one snapshot into a new file, the strata binaries taking
# turns ROUNDS times (comparing builds this way cancels most of the machine's drift). Prints, per run, the binary,
# wall seconds, user and system CPU seconds and peak RSS. With EVICT_PACKS=1 the repository's packs are dropped from
# the page cache before each restore (as after the benchmark's snapshots, which drop their packs' pages once durable;
# the rest of the page cache stays warm).
# usage: bash docs/bench/ab-restore.sh /tmp/r4 37f62666dec6 8 /tmp/old/strata .build-static/release/strata
set -euo pipefail
repo=$1 snap=$2 rounds=$3; shift 3
out=$(mktemp -u "${TMPDIR:-/tmp}/ab-restore.XXXXXX.img")
trap 'rm -f "$out"' EXIT
for r in $(seq "$rounds"); do
  for b in "$@"; do
    rm -f "$out"; sync
    if [ "${EVICT_PACKS:-0}" = 1 ]; then
      find "$repo/packs" -type f -exec python3 -c 'import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' {} +
    fi
    sleep 1
    printf "%-40s " "$b"
    /usr/bin/time -f "%e s  %U u  %S s  %M KB" "$b" -r "$repo" restore -q "$snap" "$out" 2>&1
  done
done
