#!/usr/bin/env bash
# device-restore.sh REPO SNAPSHOT ROUNDS BINARY...: restores of one snapshot onto a 4 GiB loop device over a new
# sparse file (root: losetup), the strata binaries taking turns ROUNDS times. Prints, per run, the binary, wall
# seconds, user and system CPU seconds, peak RSS, and how much of the loop device's file is allocated afterwards.
# BACKING (default /var/tmp/strata-device-restore.img) must be on a file system that can hold a 4 GiB sparse file.
# usage: bash docs/bench/device-restore.sh /tmp/r4 05b8ca5fd0ea 3 /tmp/old/strata .build-static/release/strata
set -euo pipefail
repo=$1 snap=$2 rounds=$3; shift 3
back=${BACKING:-/var/tmp/strata-device-restore.img}
trap 'rm -f "$back"' EXIT
for r in $(seq $rounds); do for b in "$@"; do
  rm -f "$back"; truncate -s 4G "$back"; dev=$(losetup -f --show "$back"); sync; sleep 1
  printf "%-32s " "$(basename $b)"
  /usr/bin/time -f "%e s  %U u  %S s  %M KB" "$b" -r "$repo" restore -q --force "$snap" "$dev" 2>&1 | tr '\n' ' '
  sync; echo " backing allocated $(du -B1 "$back" | cut -f1)"
  losetup -d "$dev"
done; done
