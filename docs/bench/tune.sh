#!/usr/bin/env bash
# tune.sh FIXTURE_DIR WORKDIR: Strata alone on the peer-bench fixture (day1 + the three day-2 variants) for a matrix
# of settings: average chunk size, zstd level and frame size. Prints a markdown table: per setting the first snapshot
# and the increments (wall seconds, repository MB after each), restore of the last, pack count, gc after removing
# the first snapshot. Run after peer-bench.sh has built its fixture (WORKDIR/fixture of that run).
# usage: PATH=$PWD/.build/release:$PATH bash docs/bench/tune.sh /tmp/peer-bench/fixture /tmp/tune
set -euo pipefail
fix=$1; work=$2
mkdir -p "$work"
t() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }
mb() { du -sb "$1" | awk '{printf "%d", $1/1e6}'; }
echo "| chunker | level | frame | first s | MB | +rebuild s | MB | +blocks s | MB | +scatter s | MB | restore s | packs | rm+gc s | MB after |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
while read -r chunker level frame; do
  repo=$work/repo; rm -rf "$repo" "$work/out.img"
  strata init -q --chunker "$chunker" --compression-level "$level" --frame-size "$frame" "$repo"
  export STRATA_REPO=$repo
  row="| $chunker | $level | $frame"
  first=""
  for d in day1 day2-rebuild day2-blocks day2-scatter; do
    cat "$fix/$d.img" > /dev/null
    s=$(t strata snap -q "$fix/$d.img" --volume disk)
    [ -z "$first" ] && first=$(strata log --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
    row="$row | $s | $(mb "$repo")"
  done
  r=$(t strata restore -q latest "$work/out.img"); rm -f "$work/out.img"
  packs=$(find "$repo/packs" -type f | wc -l)
  g=$(t sh -c "strata rm -q $first && strata gc -q")
  echo "$row | $r | $packs | $g | $(mb "$repo") |"
done <<'M'
cdc:8K 3 2M
cdc:16K 3 2M
cdc:32K 3 2M
cdc:64K 3 2M
cdc:16K 1 2M
cdc:16K 2 2M
cdc:16K 3 512K
cdc:16K 3 1M
cdc:16K 3 4M
fixed:64K 3 2M
fixed:512K 3 2M
M
