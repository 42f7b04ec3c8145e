#!/usr/bin/env bash
# Builds the format-1 compatibility fixture: two deterministic images, a repository holding a snapshot of each
# (the second incremental over the first), and a ref. It was run once and its output committed; the test suite
# restores from the committed repository so that format 1 stays readable forever. Never regenerate it for a
# format change: add a fixture for the new format beside it instead.
# usage: make-fixture.sh STRATA_BINARY
set -euo pipefail
strata=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import random, sys
d = sys.argv[1]
rng = random.Random(1)
words = [b"superblock", b"inode", b"extent", b"journal", b"strata", b"\n", b" ", b"format-1"]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) if rng.random() < 0.9 else bytes(rng.getrandbits(8) for _ in range(16))
    return bytes(out[:n])
one = text(2 << 20) + bytes(1 << 20) + bytes(rng.getrandbits(8) for _ in range(128 << 10)) + text(5000)
two = bytearray(one)
for page in (3, 100, 300):
    two[page * 4096:(page + 1) * 4096] = bytes(rng.getrandbits(8) for _ in range(4096))
open(d + "/one.img", "wb").write(one)
open(d + "/two.img", "wb").write(bytes(two))
PY
rm -rf "$here/repo"
# The committed repository was made when format 1 was the only one; --format 1 (added later) keeps a rerun the same.
"$strata" init -q --format 1 --frame-size 1M "$here/repo"
export STRATA_REPO="$here/repo"
"$strata" snap -q "$work/one.img" --volume fixture -m "format 1 fixture, first" -t kind=fixture > "$work/one.id"
"$strata" snap -q "$work/two.img" --volume fixture -m "format 1 fixture, second" > "$work/two.id"
mkdir -p "$here/repo/refs/tags"
cat "$work/two.id" > "$here/repo/refs/tags/fixture-second"
rm -f "$here/repo/lock"
rmdir "$here/repo/tmp" "$here/repo/meta" 2>/dev/null || true
{
  echo "# snapshot-id size sha256 of the restored image"
  echo "$(cat "$work/one.id") $(stat -c %s "$work/one.img") $(sha256sum < "$work/one.img" | cut -d' ' -f1)"
  echo "$(cat "$work/two.id") $(stat -c %s "$work/two.img") $(sha256sum < "$work/two.img" | cut -d' ' -f1)"
} > "$here/expected.txt"
