#!/usr/bin/env bash
# floors.sh FIXTURE_DIR WORKDIR [RUNS]: Strata's steps on the peer-bench fixture beside the least time each step can
# take on this machine. The floor of a step is the larger of
#   - all the CPU work it cannot avoid, spread over every core:
#       compute: data / hashing + new bytes / compressing (snapshots), data / decompressing + data / hashing +
#                data / copying (restore), stored bytes / decompressing + data / hashing (fsck --read-data),
#                at the all-core rates `strata bench` measures on all of day1's data (`--sample 4G`: zstd is slower
#                on the whole image than on its default 64 MiB sample, which would make the floors too low);
#       I/O:     the CPU that reading the image's data from the page cache and durably writing what the step writes
#                (the packs a snapshot adds, the restored image) cost when done by the plainest program
#                (docs/bench/io-floor.py: preads into one buffer; pwrites then fsync, counting the kernel's
#                write-back threads), divided by the cores;
#   - the wall time of that durable write alone.
# Each step runs RUNS times (default 3); the table shows the fastest and the slowest. Run it on an idle machine with
# the page cache dropped first (sync; echo 3 > /proc/sys/vm/drop_caches): the write floors count the whole
# machine's busy time.
# usage: PATH=$PWD/.build-static/release:$PATH bash docs/bench/floors.sh /tmp/peer-bench/fixture /tmp/floors
set -euo pipefail
fix=$1; work=$2; runs=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
repo=$work/repo out=$work/out.img
export STRATA_REPO=$repo
# The machine's rates: the best of three runs of `strata bench` on all of day1's data, ~1 minute each (a floor is
# what the machine can do; a run right after the page cache was dropped, or beside a neighbour's burst, measures
# less).
for i in 1 2 3; do strata bench -q --image "$fix/day1.img" --sample 4G --json > "$work/bench-$i.json"; done
t() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }
declare -A times
steps=(day1 day2-rebuild day2-blocks day2-scatter)
for run in $(seq "$runs"); do
  rm -rf "$repo" "$out"
  strata init -q "$repo"
  before=$(du -sb "$repo" | cut -f1)
  for d in "${steps[@]}"; do
    cat "$fix/$d.img" > /dev/null
    times[$d]+="$(t strata snap -q "$fix/$d.img" --volume disk) "
    after=$(du -sb "$repo" | cut -f1)
    [ "$run" = 1 ] && echo $((after - before)) > "$work/added-$d"
    before=$after
  done
  sync
  times[restore]+="$(t strata restore -q latest "$out") "
  rm -f "$out"
  times[fsck]+="$(t strata fsck -q --read-data) "
done
strata log --json > "$work/log.json"
strata stats --json > "$work/stats.json"
# The I/O floors, each measured once the steps are done (page cache as warm as for the steps).
sync
for d in "${steps[@]}"; do
  python3 "$here/io-floor.py" read "$fix/$d.img" > "$work/read-$d.json"
  python3 "$here/io-floor.py" write "$fix/$d.img" "$work" "$(cat "$work/added-$d")" > "$work/write-$d.json"
done
python3 "$here/io-floor.py" write "$fix/${steps[-1]}.img" "$work" > "$work/write-restore.json"
python3 "$here/io-floor.py" read "$repo/packs" > "$work/read-packs.json"
python3 - "$work" "$(nproc)" \
  "${times[day1]}" "${times[day2-rebuild]}" "${times[day2-blocks]}" "${times[day2-scatter]}" "${times[restore]}" "${times[fsck]}" <<'PY'
import json, os, sys
work, cores = sys.argv[1], int(sys.argv[2])
benches = [json.load(open(os.path.join(work, f"bench-{i}.json"))) for i in (1, 2, 3)]
def rate(prefix):
    return max([r for r in b["rates"] if r["name"].startswith(prefix)][0]["allCores"] for b in benches)
sha, zstd, unzstd, copy = rate("sha256"), rate("zstd level 3,"), rate("zstd decompression"), rate("memory copy")
io = lambda name: json.load(open(os.path.join(work, name + ".json")))
log = sorted(json.load(open(os.path.join(work, "log.json"))), key=lambda s: s["createdAt"])
stats = json.load(open(os.path.join(work, "stats.json")))
measured = [sorted(map(float, a.split())) for a in sys.argv[3:9]]
print(f"rates on all {cores} cores: SHA-256 {sha/1e9:.2f} GB/s, zstd-3 {zstd/1e6:.0f} MB/s, "
      f"decompression {unzstd/1e9:.2f} GB/s, copy {copy/1e9:.2f} GB/s")
print("| step | data GB | new GB | compute s | I/O CPU s | durable write s | floor s | measured s (min–max) | min / floor |")
print("|---|---|---|---|---|---|---|---|---|")
rows = []
names = ["first snapshot", "increment: rebuild", "increment: blocks", "increment: scatter"]
for snap, name, step, m in zip(log, names, ["day1", "day2-rebuild", "day2-blocks", "day2-scatter"], measured):
    data, new = snap["dataBytes"], snap["newBytes"]
    r, w = io("read-" + step), io("write-" + step)
    rows.append((name, data, new, data / sha + new / zstd, r["cpu"] + w["cpu"], w["wall"], m))
last = log[-1]["dataBytes"]
w = io("write-restore")
rows.append(("restore (latest)", last, 0, last / unzstd + last / sha + last / copy, w["cpu"], w["wall"], measured[4]))
raw = stats.get("uniqueBytes", 0)
r = io("read-packs")
rows.append(("fsck --read-data", raw, 0, raw / unzstd + raw / sha, r["cpu"], 0.0, measured[5]))
for name, data, new, compute, iocpu, wall, m in rows:
    floor = max(compute + iocpu / cores, wall)
    print(f"| {name} | {data/1e9:.2f} | {new/1e9:.3f} | {compute:.2f} | {iocpu:.2f} | {wall:.2f} | {floor:.2f} | "
          f"{m[0]:.2f}–{m[-1]:.2f} | {m[0]/floor:.2f} |")
PY
