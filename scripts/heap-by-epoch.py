#!/usr/bin/python3
"""How the C heap of a training run looks at each epoch's end: runs `trainer train` (extra
arguments are passed on), and whenever metrics.csv gains a row, stops the process for a moment and
walks glibc's main heap ([heap] in /proc/PID/maps) chunk by chunk through /proc/PID/mem: its size,
the bytes in use, the free bytes, how many free pieces of 1 MB or more and the largest, and the
free top. Free space split into many pieces while the heap grows is fragmentation (what led to
src/Models/Native/TensorBlockCache.cs; docs/performance.md). Needs permission to read the
process's memory (root, or ptrace_scope 0). Linux x86-64, glibc only.

Usage (from the repository root): /usr/bin/python3 scripts/heap-by-epoch.py OUT_DIR [trainer train arguments...]
  e.g. scripts/heap-by-epoch.py runs/heap --set train.epochs=5"""
import os, signal, struct, subprocess, sys, time

out = sys.argv[1]
run = subprocess.Popen(["./trainer", "train", "--out", out, *sys.argv[2:]], stdout=subprocess.DEVNULL)


def trainer_pid():
    found = subprocess.run(["pgrep", "-f", f"trainer.dll train --out {out}"], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


def walk(pid):
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(0.05)
        low = high = None
        for line in open(f"/proc/{pid}/maps"):
            if line.rstrip().endswith("[heap]"):
                low, high = (int(v, 16) for v in line.split()[0].split("-"))
        if low is None:
            return "no [heap] mapping"
        with open(f"/proc/{pid}/mem", "rb") as mem:
            mem.seek(low)
            data = mem.read(high - low)
    finally:
        os.kill(pid, signal.SIGCONT)
    chunks, at = [], 0
    while at + 16 <= len(data):   # each chunk: prev_size, size | flags; the next chunk's PREV_INUSE bit says if it is in use
        size = struct.unpack_from("<Q", data, at + 8)[0] & ~7
        if size < 32 or at + size > len(data):
            break
        chunks.append((at, size))
        at += size
    used = free = 0
    pieces = []
    for (start, size), (following, _) in zip(chunks, chunks[1:]):
        if struct.unpack_from("<Q", data, following + 8)[0] & 1:
            used += size
        else:
            free += size
            pieces.append(size)
    big = [p for p in pieces if p >= 1 << 20]
    mb = 1 << 20
    return (f"heap {len(data) / mb:.0f} MB: in use {used / mb:.1f} MB, free {free / mb:.1f} MB "
            f"({len(big)} pieces of 1 MB or more, largest {max(pieces, default=0) / mb:.1f} MB), free top {chunks[-1][1] / mb:.1f} MB")


seen = 0
while run.poll() is None:
    try:
        rows = len(open(os.path.join(out, "metrics.csv")).read().splitlines()) - 1
    except OSError:
        rows = 0
    if rows > seen and (pid := trainer_pid()):
        seen = rows
        print(f"epoch {rows}: {walk(pid)}", flush=True)
    time.sleep(0.1)
sys.exit(run.returncode)
