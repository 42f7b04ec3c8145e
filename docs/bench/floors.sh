#!/usr/bin/env bash
# floors.sh FIXTURE_DIR WORKDIR [RUNS]: Strata's steps on the peer-bench fixture beside the physical floor of this
# machine for each, from `strata bench` (SHA-256, zstd, decompression and copy rates on all cores).
#   first snapshot   >= data / hashing + data / compressing
#   increment        >= data / hashing + new bytes (the snapshot's newBytes) / compressing
#   restore          >= data / decompressing + data / hashing + data / copying   (+ the durable write-back)
#   fsck --read-data >= stored data / decompressing + data / hashing
# Each step runs RUNS times (default 3, page cache warm); the table shows the fastest and the slowest.
# usage: PATH=$PWD/.build/release:$PATH bash docs/bench/floors.sh /tmp/peer-bench/fixture /tmp/floors
set -euo pipefail
fix=$1; work=$2; runs=${3:-3}
mkdir -p "$work"
repo=$work/repo out=$work/out.img
export STRATA_REPO=$repo
bench=$work/bench.json
strata bench -q --image "$fix/day1.img" --json > "$bench"
rate() { python3 -c "import json,sys; r=[x for x in json.load(open('$bench'))['rates'] if x['name'].startswith(sys.argv[1])][0]; print(r['allCores'])" "$1"; }
sha=$(rate sha256); zstd=$(rate "zstd level 3,"); unzstd=$(rate "zstd decompression"); copy=$(rate "memory copy")
t() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }
declare -A times
for run in $(seq "$runs"); do
  rm -rf "$repo" "$out"
  strata init -q "$repo"
  for d in day1 day2-rebuild day2-blocks day2-scatter; do
    cat "$fix/$d.img" > /dev/null
    times[$d]+="$(t strata snap -q "$fix/$d.img" --volume disk) "
  done
  times[restore]+="$(t strata restore -q latest "$out") "
  rm -f "$out"
  times[fsck]+="$(t strata fsck -q --read-data) "
done
strata log --json > "$work/log.json"
strata stats --json > "$work/stats.json"
python3 - "$work/log.json" "$work/stats.json" "$sha" "$zstd" "$unzstd" "$copy" \
  "${times[day1]}" "${times[day2-rebuild]}" "${times[day2-blocks]}" "${times[day2-scatter]}" "${times[restore]}" "${times[fsck]}" <<'PY'
import json, sys
log = sorted(json.load(open(sys.argv[1])), key=lambda s: s["createdAt"])
stats = json.load(open(sys.argv[2]))
sha, zstd, unzstd, copy = map(float, sys.argv[3:7])
measured = [sorted(map(float, a.split())) for a in sys.argv[7:13]]
print(f"rates on all cores: SHA-256 {sha/1e9:.2f} GB/s, zstd-3 {zstd/1e6:.0f} MB/s, "
      f"decompression {unzstd/1e9:.2f} GB/s, copy {copy/1e9:.2f} GB/s")
print("| step | data GB | new GB | floor s | measured s (min–max) | min / floor |")
print("|---|---|---|---|---|---|")
rows = []
for snap, name, m in zip(log, ["first snapshot", "increment: rebuild", "increment: blocks", "increment: scatter"], measured):
    data, new = snap["dataBytes"], snap["newBytes"]
    rows.append((name, data, new, data / sha + new / zstd, m))
last = log[-1]["dataBytes"]
rows.append(("restore (latest)", last, 0, last / unzstd + last / sha + last / copy, measured[4]))
raw = stats.get("uniqueBytes", 0)
rows.append(("fsck --read-data", raw, 0, raw / unzstd + raw / sha, measured[5]))
for name, data, new, floor, m in rows:
    print(f"| {name} | {data/1e9:.2f} | {new/1e9:.3f} | {floor:.2f} | {m[0]:.2f}–{m[-1]:.2f} | {m[0]/floor:.2f} |")
PY
