#!/usr/bin/env bash
# What reading through a point-in-time clone costs (snap --clone auto against --clone never), on an XFS file system
# mounted from a loop device (root; packages xfsprogs, time). Usage: clone.sh IMAGE WORKDIR [ROUNDS]
# IMAGE is copied onto the XFS file system; repositories go to WORKDIR (not on the XFS). strata must be on PATH.
set -euo pipefail
img=$1 work=$2 rounds=${3:-2}
mkdir -p "$work"
mnt=$work/xfs
backing=$work/xfs.img
size=$(( ($(stat -c %s "$img") * 3 / 2) / 1048576 + 512 ))
rm -f "$backing"; truncate -s "${size}M" "$backing"
mkfs.xfs -q "$backing"
mkdir -p "$mnt"
mount -o loop "$backing" "$mnt"
trap 'umount "$mnt"' EXIT
cp --sparse=always "$img" "$mnt/vm.img"
sync
t() { /usr/bin/time -f "%e s, %U user, %S system, %M KiB" "$@" 2>&1 >/dev/null | tail -1; }
for r in $(seq "$rounds"); do
  for mode in never auto; do
    rm -rf "$work/repo-$mode"; strata init -q "$work/repo-$mode"
    echo "round $r $mode first snapshot (source pages cached, clean): $(t strata -r "$work/repo-$mode" snap -q --clone "$mode" "$mnt/vm.img")"
    echo "round $r $mode unchanged again: $(t strata -r "$work/repo-$mode" snap -q --clone "$mode" "$mnt/vm.img")"
    # 64 MiB of 4 KiB writes in place, left dirty in the page cache (a VM with a write-back cache)
    python3 - "$mnt/vm.img" "$r-$mode" <<'PY'
import os, random, sys
f = os.open(sys.argv[1], os.O_RDWR); rng = random.Random(sys.argv[2])
size = os.fstat(f).st_size
for _ in range(16384):
    os.pwrite(f, rng.randbytes(4096), rng.randrange(0, min(size, 1536 << 20) // 4096) * 4096)
os.close(f)
PY
    echo "round $r $mode after 64 MiB of writes not yet on disk: $(t strata -r "$work/repo-$mode" snap -q --clone "$mode" "$mnt/vm.img")"
    sync
    sync; echo 3 > /proc/sys/vm/drop_caches
    echo "round $r $mode unchanged, page cache dropped: $(t strata -r "$work/repo-$mode" snap -q --clone "$mode" "$mnt/vm.img")"
  done
done
