#!/bin/bash
# Restore a repository's latest snapshot with memory made cold before each run, interleaving several strata builds.
#
#   usage: cold-restore.sh REPO OUT RUNS STRATA...
#     REPO    repository (its latest snapshot is restored)
#     OUT     restore target file (removed before each run)
#     RUNS    rounds; each round restores once with each STRATA binary
#
# Before each run: the page cache is dropped, 10 s pass (on a VM, the host takes free memory back: the next first
# touch of a page costs ~2 µs of system time), and the repository is read back into the page cache, so that the run
# writes into cold memory and reads a warm repository. Prints wall, user and system seconds per run. Needs root.
set -euo pipefail
[ $# -ge 4 ] || { sed -n '2,11p' "$0"; exit 2; }
repo=$1; out=$2; runs=$3; shift 3
for _ in $(seq "$runs"); do
  for bin in "$@"; do
    rm -f "$out"; sync; echo 3 > /proc/sys/vm/drop_caches; sleep 10
    find "$repo" -type f -exec cat {} + > /dev/null
    /usr/bin/time -f "$(basename "$bin"): %e s wall, %U s user, %S s system" "$bin" -r "$repo" restore -q latest "$out"
  done
done
rm -f "$out"
