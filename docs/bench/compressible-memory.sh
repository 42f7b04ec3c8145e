#!/bin/bash
# compressible-memory.sh STRATA [WORKDIR]: peak RSS of snap, copy, export and import for data that compresses very
# well (text, ~20 to 1), where a pack holds many objects: a 16 GiB sparse image holding 1 GiB of distinct text
# (256 regions of 4 MiB, one every 64 MiB), snapshotted with 4 KiB chunks (266k objects) and with the default
# cdc:16K (68k objects). The baseline is a restore of a 4 KiB snapshot of the same repository: the process plus the
# loaded index. Peak RSS from /usr/bin/time (KiB). Takes ~30 s; needs ~1.5 GB of disk.
set -eu
S=$1; D=${2:-/tmp/strata-compressible}
rm -rf "$D"; mkdir -p "$D"
truncate -s 16G "$D/img"
for k in $(seq 0 255); do
  seq $((k*100000000+7)) 3 999999999999 | head -c 4M | dd of="$D/img" bs=1M seek=$((k*64)) conv=notrunc status=none iflag=fullblock
done
head -c 4096 /dev/urandom > "$D/tiny"
rss() { local label=$1; shift; /usr/bin/time -f "%M" -o "$D/t" "$@" >/dev/null; echo "$label: $(( $(cat "$D/t") / 1024 )) MiB"; }
for chunker in fixed:4K cdc:16K; do
  echo "== $chunker"
  rm -rf "$D/repo" "$D/cp" "$D/imp" "$D/b.bundle"
  "$S" init -q "$D/repo" --chunker "$chunker"
  rss "first snap" "$S" -r "$D/repo" snap -q "$D/img" --volume big
  "$S" -r "$D/repo" snap -q "$D/tiny" --volume tiny >/dev/null
  rss "baseline (restore of a 4 KiB snapshot)" "$S" -r "$D/repo" restore -q latest --volume tiny "$D/tiny.out"; rm -f "$D/tiny.out"
  "$S" init -q "$D/cp" --copy-chunker-from "$D/repo"
  rss "copy (shared chunking)" "$S" -r "$D/repo" copy -q latest --volume big --to "$D/cp"
  rss "export" "$S" -r "$D/repo" export -q latest --volume big "$D/b.bundle"
  "$S" init -q "$D/imp"
  rss "import (into a cdc:16K repository)" "$S" -r "$D/imp" import -q "$D/b.bundle"
done
rm -rf "$D"
