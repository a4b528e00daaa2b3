"""Benchmark 3, I/O: Zarr v3 write and read throughput of connecto's engine (`run_blockwise` with a write kernel and a
read kernel, workers=2) vs tensorstore (zarr3 driver, same shape, dtype, chunks, codec and content) vs `dd` raw disk.

    python benchmarks/io_throughput.py                       # 256x2048x2048 uint8, chunks 64x256x256, zstd-3 and uncompressed
    python benchmarks/io_throughput.py --codecs zstd --reps 3
    python benchmarks/io_throughput.py --shape 64,512,512 --reps 1 --no-results   # smoke test

MB/s are uncompressed (logical) bytes per second, 1 MB = 1e6 bytes. Both sides write into and read from the page
cache (no fsync; the machine has enough RAM to hold everything), so Zarr numbers measure CPU (codec, copies,
scheduling) rather than the disk; `dd` with O_DIRECT measures the disk.
"""
from __future__ import annotations
import argparse, json, logging, os, re, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import setup_workers_path, update_results, rmtree, du, median, gib, Contention, load_note

K = setup_workers_path()
WORKERS = 2   # set from --workers
import numpy as np

def triple(s): return tuple(int(v) for v in s.split(','))

def chunk_boxes(shape, chunks):
    for idx in np.ndindex(*[-(-s // c) for s, c in zip(shape, chunks)]):
        start = tuple(i * c for i, c in zip(idx, chunks))
        yield start, tuple(min(c, s - a) for a, c, s in zip(start, chunks, shape))

# ------------------------------------------------------------------ connecto
def connecto_write(spec, shape, chunks, codec, client=None, block=None):
    from connecto.volume import create_volume
    from connecto.blocks import BlockGrid
    from connecto.engine import run_blockwise, Task
    from connecto.config import Config
    rmtree(spec.split('.zarr')[0] + '.zarr')
    t = time.perf_counter()
    vol = create_volume(spec, shape, 'uint8', chunks=chunks, compression=codec, compression_level=3)
    run_blockwise(Task('write', BlockGrid(shape, block or chunks), spec, K.write_block, dict(dst=vol)),
                  Config(num_workers=WORKERS), client=client, progress=False)
    return time.perf_counter() - t

def connecto_read(spec, shape, chunks, ledger_dir, client=None, block=None):
    from connecto.volume import Volume
    from connecto.blocks import BlockGrid
    from connecto.engine import run_blockwise, Task
    from connecto.config import Config
    rmtree(ledger_dir)
    t = time.perf_counter()
    run_blockwise(Task('read', BlockGrid(shape, block or chunks), ledger_dir, K.read_block, dict(src=Volume(spec))),
                  Config(num_workers=WORKERS), client=client, progress=False)
    return time.perf_counter() - t

# ------------------------------------------------------------------ tensorstore
def ts_spec(path, shape, chunks, codec, create):
    codecs = [{'name': 'bytes'}] + ([{'name': 'zstd', 'configuration': {'level': 3, 'checksum': False}}] if codec == 'zstd' else [])
    s = {'driver': 'zarr3', 'kvstore': {'driver': 'file', 'path': str(path)}}
    if create:
        s.update(create=True, delete_existing=True, metadata={
            'shape': list(shape), 'data_type': 'uint8', 'fill_value': 0, 'codecs': codecs,
            'chunk_grid': {'name': 'regular', 'configuration': {'chunk_shape': list(chunks)}},
            'chunk_key_encoding': {'name': 'default'}})
    return s

def ts_write(path, shape, chunks, codec):
    import tensorstore as ts
    rmtree(path)
    t = time.perf_counter()
    arr = ts.open(ts_spec(path, shape, chunks, codec, True)).result()
    futs = [arr[tuple(slice(a, a + n) for a, n in zip(st, sh))].write(K.synth_region(st, sh))
            for st, sh in chunk_boxes(shape, chunks)]
    for f in futs: f.result()
    return time.perf_counter() - t

def ts_read(path, shape, chunks, slab=None):
    "Read the whole array in z-slabs of one chunk layer (tensorstore decodes the chunks of a slab in parallel)."
    import tensorstore as ts
    t = time.perf_counter()
    arr = ts.open({'driver': 'zarr3', 'kvstore': {'driver': 'file', 'path': str(path)}, 'open': True}).result()
    slab = slab or chunks[0]
    nxt = arr[0:slab].read()
    for z in range(0, shape[0], slab):
        cur = nxt
        if z + slab < shape[0]: nxt = arr[z + slab:z + 2 * slab].read()   # keep one slab read ahead
        cur.result()
    return time.perf_counter() - t

# ------------------------------------------------------------------ dd
def dd(path, mb=1024):
    "Raw disk write and read MB/s with O_DIRECT (bs 16 MiB)."
    def rate(out):
        m = re.search(r'(\d+) bytes .* copied, ([\d.]+) s', out)
        return int(m.group(1)) / float(m.group(2)) / 1e6
    w = subprocess.run(['dd', 'if=/dev/zero', f'of={path}', 'bs=16M', f'count={mb // 16}', 'oflag=direct'], capture_output=True, text=True)
    r = subprocess.run(['dd', f'if={path}', 'of=/dev/null', 'bs=16M', 'iflag=direct'], capture_output=True, text=True)
    os.remove(path)
    return rate(w.stderr), rate(r.stderr)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--shape', type=triple, default=(256, 2048, 2048))
    ap.add_argument('--chunks', type=triple, default=(64, 256, 256))
    ap.add_argument('--workers', type=int, default=2, help='connecto workers: 0 = threads in this process (the default of connecto), N = N worker processes')
    ap.add_argument('--block-shape', type=triple, default=None, help="connecto's block shape (default: one chunk)")
    ap.add_argument('--codecs', default='zstd,none', help='comma list of zstd (level 3) and none')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--workdir', default='/tmp/connecto-bench/io')
    ap.add_argument('--no-results', action='store_true')
    a = ap.parse_args()
    logging.getLogger('distributed').setLevel(logging.ERROR)
    from connecto.cluster import dask_client
    wd = Path(a.workdir); rmtree(wd); wd.mkdir(parents=True, exist_ok=True)
    global WORKERS
    WORKERS = a.workers
    shape, chunks = a.shape, a.chunks
    nbytes = int(np.prod(shape)); mb = nbytes / 1e6
    conts, rows, res = [], [], {}
    d_w, d_r = zip(*[dd(str(wd / 'dd.bin')) for _ in range(a.reps)])
    print(f"dd O_DIRECT 1 GiB: write {[round(x) for x in d_w]} MB/s, read {[round(x) for x in d_r]} MB/s", flush=True)
    for codec in a.codecs.split(','):
        c_spec, ts_path = str(wd / 'connecto.zarr/vol'), wd / 'ts.zarr'
        r = {k: [] for k in ('cw', 'cr', 'cw_warm', 'cr_warm', 'tw', 'tr')}
        for i in range(a.reps):
            with Contention() as ct: r['cw'].append(connecto_write(c_spec, shape, chunks, codec, block=a.block_shape))
            conts.append(ct)
            with Contention() as ct: r['tw'].append(ts_write(ts_path, shape, chunks, codec))
            conts.append(ct)
            with Contention() as ct: r['cr'].append(connecto_read(c_spec, shape, chunks, str(wd / 'read-ledger'), block=a.block_shape))
            conts.append(ct)
            with Contention() as ct: r['tr'].append(ts_read(c_spec + '/s0', shape, chunks))
            conts.append(ct)
            print(f"[{codec}] rep {i}: connecto write {r['cw'][-1]:.2f} s, tensorstore write {r['tw'][-1]:.2f} s, "
                  f"connecto read {r['cr'][-1]:.2f} s, tensorstore read {r['tr'][-1]:.2f} s "
                  f"(foreign load max {max(c.share for c in conts[-4:]):.0%})", flush=True)
        if codec == a.codecs.split(',')[0]:   # same content on both sides, readable by both
            import tensorstore as ts
            x = ts.open({'driver': 'zarr3', 'kvstore': {'driver': 'file', 'path': c_spec + '/s0'}, 'open': True}).result()
            y = ts.open({'driver': 'zarr3', 'kvstore': {'driver': 'file', 'path': str(ts_path)}, 'open': True}).result()
            assert np.array_equal(x[:chunks[0]].read().result(), y[:chunks[0]].read().result()), 'connecto and tensorstore wrote different data'
        sizes = (du(wd / 'connecto.zarr'), du(ts_path))
        # the engine alone: same two operations on a cluster started beforehand
        with dask_client(2) as client:
            for i in range(a.reps):
                with Contention() as ct: r['cw_warm'].append(connecto_write(c_spec, shape, chunks, codec, client=client, block=a.block_shape))
                conts.append(ct)
                with Contention() as ct: r['cr_warm'].append(connecto_read(c_spec, shape, chunks, str(wd / 'read-ledger'), client=client, block=a.block_shape))
                conts.append(ct)
            print(f"[{codec}] pre-started cluster: connecto write {r['cw_warm']}, read {r['cr_warm']}", flush=True)
        rmtree(wd / 'connecto.zarr'); rmtree(ts_path); rmtree(wd / 'read-ledger')
        m = {k: median(v) for k, v in r.items()}
        res[codec] = dict(times=r, medians=m, sizes=sizes)
        label = 'zstd level 3' if codec == 'zstd' else 'uncompressed (bytes codec only)'
        rows.append(f"| {label} | write | {mb / m['cw']:.0f} | {mb / m['cw_warm']:.0f} | {mb / m['tw']:.0f} | "
                    f"**{m['tw'] / m['cw']:.2f}x** ({m['tw'] / m['cw_warm']:.2f}x) | {median(d_w):.0f} |")
        rows.append(f"| {label} | read | {mb / m['cr']:.0f} | {mb / m['cr_warm']:.0f} | {mb / m['tr']:.0f} | "
                    f"**{m['tr'] / m['cr']:.2f}x** ({m['tr'] / m['cr_warm']:.2f}x) | {median(d_r):.0f} |")
        rows.append(f"| | stored | connecto {gib(sizes[0]):.2f} GiB | | tensorstore {gib(sizes[1]):.2f} GiB | | |")
    rmtree(wd)
    print(json.dumps(res, default=str, indent=1))
    raw_times = '\n'.join(f"- {c}: " + '; '.join(f"{k} " + ', '.join(f'{t:.2f}' for t in v) for k, v in d['times'].items())
                          for c, d in res.items())
    misses = [f"{c} {op}" for c, d in res.items() for op, a_, b_ in (('write', 'cw', 'tw'), ('read', 'cr', 'tr'))
              if d['medians'][b_] / d['medians'][a_] < 0.9]
    body = f"""Array: {shape[0]}x{shape[1]}x{shape[2]} uint8 ({gib(nbytes):.2f} GiB), chunks {chunks[0]}x{chunks[1]}x{chunks[2]}, Zarr v3; connecto blocks {"x".join(map(str, a.block_shape or chunks))}.
Content: the same synthetic, compressible data on both sides (`bench_kernels.synth_region`, a window of a cached
template per chunk, ~1.7x with zstd-3). connecto write = `run_blockwise(Task('write', ..., write_block), Config(num_workers={a.workers}))` into a volume
made by `create_volume`; connecto read = `run_blockwise(Task('read', ..., read_block), Config(num_workers={a.workers}))` (each block's core read and
decoded, then dropped). tensorstore write = one `write` per chunk, all issued at once, then awaited; tensorstore
read = the whole array in 64-slice slabs with one slab read ahead; default tensorstore context (2 cores). Both
read the array connecto wrote. dd: `dd if=/dev/zero of=FILE bs=16M count=64 oflag=direct`, then
`dd if=FILE of=/dev/null bs=16M iflag=direct`. MB/s = uncompressed MB (1e6 B) per second, medians of {a.reps} runs.
"connecto" includes starting and stopping its 2-process Dask LocalCluster inside `run_blockwise` (as a user runs
it); "connecto, warm cluster" passes a cluster started beforehand (`run_blockwise(client=...)`). Zarr writes go to
the page cache (no fsync) and reads come from it, so they are CPU-bound, unlike dd.

| codec | op | connecto MB/s | connecto, warm cluster MB/s | tensorstore MB/s | connecto / tensorstore (warm) | dd O_DIRECT MB/s |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

- target connecto >= 0.9x tensorstore: {'met for all' if not misses else 'MISSED for ' + ', '.join(misses) + ' (end-to-end, with cluster start-up)'}
- raw times (s): cw = connecto write, tw = tensorstore write, cr/tr = reads, *_warm = connecto on a pre-started cluster
{raw_times}
{load_note(conts)}"""
    name = 'io_throughput' + ('' if a.workers == 2 and a.block_shape is None else f"-w{a.workers}-b{'x'.join(map(str, a.block_shape or chunks))}")
    if not a.no_results: update_results(name, f'3. I/O: Zarr write/read throughput, connecto (workers={a.workers}, blocks {"x".join(map(str, a.block_shape or chunks))}) vs tensorstore vs dd', body)

if __name__ == '__main__':
    main()
