#!/usr/bin/env python3
"""The least I/O a step of the benchmark must do on this machine, done by the plainest program possible.

  io-floor.py read PATH               read the data of a file (its SEEK_DATA/SEEK_HOLE extents), or of every file under
                                      a directory, in 1 MiB preads into one reused buffer, as a snapshot (or a check
                                      of the packs) must
  io-floor.py write IMAGE DIR [BYTES] write the image's data extents (or only BYTES bytes, e.g. the packs a snapshot
                                      adds) from memory into a new file in DIR and fsync it, as a restore (or a
                                      snapshot's packs) must; the file is removed afterwards

Measures three times and prints one JSON object: the least wall seconds and the least CPU seconds. For `read`, CPU is this process's own (user + system). For
`write`, it is the whole machine's busy time from /proc/stat, because the kernel's write-back threads do part of the
work (on this VM the write-back of 1.5 GB costs ~0.5 CPU-seconds); run it on an otherwise idle machine.
"""
import json
import os
import sys
import time

MIB = 1 << 20


def extents(fd):
    """(offset, length) of each data extent, in order."""
    size = os.fstat(fd).st_size
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError:
            return
        end = os.lseek(fd, start, os.SEEK_HOLE)
        yield start, end - start
        offset = end


def busy_seconds():
    """Busy CPU time of the whole machine so far (user, nice, system, irq, softirq, steal), in seconds."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def read(path):
    buffer = bytearray(MIB)
    view = memoryview(buffer)
    if os.path.isdir(path):
        files = sorted(os.path.join(d, f) for d, _, names in os.walk(path) for f in names)
    else:
        files = [path]
    total = 0
    t0, c0 = time.monotonic(), os.times()
    for name in files:
        fd = os.open(name, os.O_RDONLY)
        for start, length in extents(fd):
            done = 0
            while done < length:
                n = os.preadv(fd, [view[:min(MIB, length - done)]], start + done)
                if n <= 0:
                    break
                done += n
            total += done
        os.close(fd)
    t1, c1 = time.monotonic(), os.times()
    return {"bytes": total, "wall": t1 - t0, "cpu": (c1.user - c0.user) + (c1.system - c0.system)}


def write(image, directory, limit):
    fd = os.open(image, os.O_RDONLY)
    layout = list(extents(fd))
    source = bytearray(os.pread(fd, MIB, layout[0][0] if layout else 0).ljust(MIB, b"\x01"))
    os.close(fd)
    if limit is not None:  # the same byte count, written contiguously (a pack file)
        layout = [(0, limit)]
    view = memoryview(source)
    path = os.path.join(directory, ".io-floor-%d" % os.getpid())
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    total = 0
    try:
        t0, b0 = time.monotonic(), busy_seconds()
        if limit is None:
            os.ftruncate(out, os.stat(image).st_size)
        for start, length in layout:
            done = 0
            while done < length:
                n = os.pwrite(out, view[:min(MIB, length - done)], start + done)
                done += n
            total += done
        os.fsync(out)
        t1, b1 = time.monotonic(), busy_seconds()
    finally:
        os.close(out)
        os.unlink(path)
    return {"bytes": total, "wall": t1 - t0, "cpu": b1 - b0}


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "read":
        measure = lambda: read(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "write":
        measure = lambda: write(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else None)
    else:
        sys.exit(__doc__)
    # The least of three runs: a floor is what the machine can do, not what it did while reclaiming memory.
    runs = [measure() for _ in range(3)]
    print(json.dumps({"bytes": runs[0]["bytes"], "wall": min(r["wall"] for r in runs), "cpu": min(r["cpu"] for r in runs)}))


if __name__ == "__main__":
    main()
