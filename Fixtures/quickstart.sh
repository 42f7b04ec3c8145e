#!/usr/bin/env bash
# Strata quick start: installs what Strata needs (Debian 12), builds it, and versions an example ext4 image:
# init, snap, change the image, snap again, log, restore, cmp, e2fsck, fsck.
# usage: Fixtures/quickstart.sh [DEMO_DIR]   (default /tmp/strata-demo; it is replaced)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg -s libzstd-dev e2fsprogs qemu-utils libnbd-bin xfsprogs >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then echo "quickstart: run as root, or first: sudo apt-get install -y libzstd-dev e2fsprogs qemu-utils libnbd-bin xfsprogs" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libzstd-dev e2fsprogs qemu-utils libnbd-bin xfsprogs >/dev/null
fi
echo "== building strata (release, the Swift runtime linked in: one self-contained binary)"
swift build -c release --static-swift-stdlib --build-path .build-static 2>&1 | tail -1
strata=$PWD/.build-static/release/strata
demo=${1:-/tmp/strata-demo}
rm -rf "$demo" && mkdir -p "$demo/tree" && cd "$demo"

echo "== making an example disk image: 256 MiB ext4 holding ~40 MB of real files"
total=0
while IFS= read -r f; do
  size=$(stat -c %s "$f")
  cp "$f" "tree/$(echo "$f" | tr / _)" 2>/dev/null && total=$((total + size))
  [ "$total" -ge $((40 << 20)) ] && break
done < <(find /usr/share/doc /usr/share/perl /usr/lib/x86_64-linux-gnu -type f -size -4M 2>/dev/null | sort)
truncate -s 256M disk.img
mke2fs -q -F -t ext4 -d tree disk.img

set -x
"$strata" init repo
export STRATA_REPO=$demo/repo
"$strata" snap disk.img -m "day one" -t env=demo
set +x
echo "== changing the image: adding 20 files and deleting 10 (debugfs, filesystem stays valid)"
for i in $(seq 1 20); do head -c $((RANDOM * 8)) /dev/urandom > "new$i.bin"; echo "write new$i.bin /new$i.bin"; done > cmds
ls tree | sed -n '1,10s|^|rm /|p' >> cmds
debugfs -w -f cmds disk.img >/dev/null 2>&1
set -x
"$strata" snap disk.img -m "day two"
"$strata" log
"$strata" restore latest restored.img
cmp disk.img restored.img
e2fsck -fn restored.img
"$strata" fsck --read-data
set +x
echo "== done: the repository is $STRATA_REPO; try: STRATA_REPO=$STRATA_REPO $strata log"
