#!/usr/bin/env bash
# other-images.sh WORKDIR FIXTURE_DIR STRATA [PEERS]: Strata (and optionally borg and restic, as peer-bench.sh runs
# them) on images unlike the side-by-side fixture:
#   random    a 2 GiB sparse file whose first 1.5 GB are pseudo-random bytes (incompressible: an encrypted volume)
#   full      the fixture's day1.img copied with every zero written out (a `dd` of a disk: no holes to skip)
#   stdin     day1.img piped in (`cat day1.img | strata snap -`), with the pipe alone timed beside it
# Each: snapshot into a fresh repository, the same image again (nothing changed), restore to a new file (compared
# with the source), fsck --read-data. Prints "case tool step wall-s user-s sys-s peak-RSS-MiB" lines.
# PEERS: "borg restic" or a subset (default: none). Needs ~12 GB free in WORKDIR.
# usage: bash docs/bench/other-images.sh /work/other /work/bench/fixture .build-static/release/strata "borg restic"
set -euo pipefail
work=$(mkdir -p "$1" && readlink -f "$1"); fix=$(readlink -f "$2"); strata=$(readlink -f "$3"); peers=${4:-}
cd "$work"

if [ ! -f random.img ]; then
  truncate -s 2G random.img
  python3 - random.img <<'PY'
import random, sys
rng = random.Random(20261130)
with open(sys.argv[1], "r+b") as f:
    for _ in range(1500 * 1000 * 1000 // (50 * 1000 * 1000)):
        f.write(rng.randbytes(50 * 1000 * 1000))
PY
fi
[ -f full.img ] || cp --sparse=never "$fix/day1.img" full.img

timed() { # case tool step command...
  local c=$1 t=$2 s=$3; shift 3
  local r; r=$({ /usr/bin/time -f "%e %U %S %M" "$@" > /dev/null; } 2>&1 | tail -1)
  set -- $r
  printf '%-7s %-7s %-8s %6s %6s %6s %5d\n' "$c" "$t" "$s" "$1" "$2" "$3" $(($4 / 1024))
}
warm() { cat "$1" > /dev/null; }

run_strata() { # case image|-
  local c=$1 img=$2 repo=$work/repo-strata
  rm -rf "$repo" out.img; "$strata" init -q "$repo"
  if [ "$img" = - ]; then
    warm "$fix/day1.img"
    timed "$c" strata snap sh -c "cat '$fix/day1.img' | '$strata' -r '$repo' snap -q - --volume d"
    timed "$c" strata again sh -c "cat '$fix/day1.img' | '$strata' -r '$repo' snap -q - --volume d"
    timed "$c" pipe   alone sh -c "cat '$fix/day1.img' | dd of=/dev/null bs=64k status=none"
    src=$fix/day1.img
  else
    warm "$img"
    timed "$c" strata snap "$strata" -r "$repo" snap -q "$img" --volume d
    timed "$c" strata again "$strata" -r "$repo" snap -q "$img" --volume d
    src=$img
  fi
  sync
  timed "$c" strata restore "$strata" -r "$repo" restore -q latest out.img
  cmp -s out.img "$src" || { echo "$c strata: restore differs from $src" >&2; exit 1; }
  timed "$c" strata fsck "$strata" -r "$repo" fsck -q --read-data
  echo "$c strata repository $(du -sb "$repo" | cut -f1) B"
  rm -rf "$repo" out.img
}

run_borg() { # case image
  local c=$1 img=$2 repo=$work/repo-borg
  rm -rf "$repo" rst; mkdir rst
  export BORG_REPO=$repo BORG_BASE_DIR=$work/borg-base BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
  borg init --encryption=none
  warm "$img"
  timed "$c" borg snap sh -c "cd '$(dirname "$img")' && borg create --compression zstd,3 ::one '$(basename "$img")'"
  timed "$c" borg again sh -c "cd '$(dirname "$img")' && borg create --compression zstd,3 ::two '$(basename "$img")'"
  timed "$c" borg restore sh -c "cd rst && borg extract --sparse ::two"
  cmp -s "rst/$(basename "$img")" "$img" || { echo "$c borg: restore differs" >&2; exit 1; }
  timed "$c" borg fsck borg check --verify-data
  echo "$c borg repository $(du -sb "$repo" | cut -f1) B"
  rm -rf "$repo" rst "$work/borg-base"
}

run_restic() { # case image
  local c=$1 img=$2 repo=$work/repo-restic
  rm -rf "$repo" rst
  export RESTIC_REPOSITORY=$repo RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$work/restic-cache
  restic init -q
  warm "$img"
  timed "$c" restic snap restic backup -q "$img"
  timed "$c" restic again restic backup -q "$img"
  timed "$c" restic restore restic restore -q latest --target rst
  cmp -s "rst$img" "$img" || { echo "$c restic: restore differs" >&2; exit 1; }
  timed "$c" restic fsck restic check -q --read-data
  echo "$c restic repository $(du -sb "$repo" | cut -f1) B"
  rm -rf "$repo" rst "$work/restic-cache"
}

for c in random full stdin; do
  case $c in random) img=$work/random.img ;; full) img=$work/full.img ;; stdin) img=- ;; esac
  run_strata "$c" "$img"
  [ "$img" = - ] && continue
  for p in $peers; do "run_$p" "$c" "$img"; done
done
