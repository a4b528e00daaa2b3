"""Benchmark 1, engine overhead: one per-block kernel (3D Gaussian, sigma 2, halo 8, float32 output) over a generated
uint8 Zarr volume, through connecto's `run_blockwise` vs `dask.array.map_overlap(...).to_zarr(...)` on a
`distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`.

    python benchmarks/engine_overhead.py --reps 2 --reps-w1 1   # 256x2048x2048 (1 GiB), ~11 min on 2 cores
    python benchmarks/engine_overhead.py --shape 64,512,512 --reps 1 --reps-w1 1 --warm 1 --no-results   # smoke test
"""
from __future__ import annotations
import argparse, json, logging, os, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import setup_workers_path, update_results, rmtree, du, median, gib, Contention, load_note

K = setup_workers_path()
import numpy as np

def triple(s): return tuple(int(v) for v in s.split(','))

def generate_input(spec, shape, chunks):
    from connecto.volume import create_volume
    from connecto.blocks import BlockGrid
    from connecto.engine import run_blockwise, Task
    from connecto.config import Config
    vol = create_volume(spec, shape, 'uint8', chunks=chunks, compression='zstd', compression_level=3, overwrite=True)
    rep = run_blockwise(Task('generate', BlockGrid(shape, chunks), spec, K.generate_block, dict(dst=vol)),
                        Config(num_workers=2), progress=False)
    return rep

def run_connecto(inp, out, shape, chunks, halo, sigma, workers, client=None):
    "Returns (wall seconds incl. output creation and cluster start, RunReport)."
    from connecto.volume import Volume, create_volume
    from connecto.blocks import BlockGrid
    from connecto.engine import run_blockwise, Task
    from connecto.config import Config
    rmtree(Path(out.split('.zarr')[0] + '.zarr'))
    t = time.perf_counter()
    dst = create_volume(out, shape, 'float32', chunks=chunks, compression='zstd', compression_level=3)
    rep = run_blockwise(Task('gaussian', BlockGrid(shape, chunks, halo), out, K.gaussian_block,
                             dict(src=Volume(inp), dst=dst, sigma=sigma)),
                        Config(num_workers=workers), client=client, progress=False)
    return time.perf_counter() - t, rep

def dask_cluster():
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.ERROR)
    return cluster, Client(cluster)

def run_dask(inp, out, chunks, halo, sigma, client=None):
    "Returns (wall seconds incl. cluster start unless `client` is given, compute-only seconds)."
    import dask.array as da, zarr
    from zarr.codecs import ZstdCodec
    rmtree(Path(out.split('.zarr')[0] + '.zarr'))
    t = time.perf_counter()
    own = client is None
    if own: cluster, client = dask_cluster()
    try:
        t1 = time.perf_counter()
        x = da.from_zarr(inp + '/s0')
        assert x.chunksize == tuple(chunks), (x.chunksize, chunks)
        y = x.map_overlap(K.gaussian_chunk, depth=halo, boundary='reflect', dtype=np.float32, sigma=sigma)
        z = zarr.create_array(store=out, shape=x.shape, chunks=chunks, dtype='float32', fill_value=0,
                              compressors=ZstdCodec(level=3), overwrite=True)
        da.to_zarr(y, z)
        t2 = time.perf_counter()
    finally:
        if own: client.close(); cluster.close()
    return time.perf_counter() - t, t2 - t1

def max_abs_diff(a_spec, b_path, shape, chunks):
    import zarr
    a, b = zarr.open_array(a_spec + '/s0', mode='r'), zarr.open_array(b_path, mode='r')
    m = 0.
    for z in range(0, shape[0], chunks[0]):
        m = max(m, float(np.abs(a[z:z + chunks[0]] - b[z:z + chunks[0]]).max()))
    return m

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--shape', type=triple, default=(256, 2048, 2048))
    ap.add_argument('--chunks', type=triple, default=(64, 256, 256), help='storage chunks = connecto blocks = dask chunks')
    ap.add_argument('--halo', type=int, default=8)
    ap.add_argument('--sigma', type=float, default=2.0)
    ap.add_argument('--reps', type=int, default=3, help='repetitions of connecto workers=2 and dask')
    ap.add_argument('--reps-w1', type=int, default=3, help='repetitions of connecto workers=1')
    ap.add_argument('--warm', type=int, default=0, metavar='N', help='also time both N times on one pre-started cluster (no start-up in the time)')
    ap.add_argument('--workdir', default='/tmp/connecto-bench/engine')
    ap.add_argument('--keep', action='store_true', help='keep the generated data')
    ap.add_argument('--reuse-input', action='store_true', help='reuse a generated input of the same shape left by --keep or an interrupted run')
    ap.add_argument('--no-results', action='store_true', help='do not write RESULTS.md')
    a = ap.parse_args()
    logging.getLogger('distributed').setLevel(logging.ERROR)
    wd = Path(a.workdir); wd.mkdir(parents=True, exist_ok=True)
    shape, chunks, halo = a.shape, a.chunks, (a.halo,) * 3
    inp = str(wd / 'input.zarr/raw')
    gb = np.prod(shape) / 2**30
    print(f"generating {shape} uint8 ({gb:.2f} GiB) in chunks {chunks} at {inp}", flush=True)
    reuse = False
    if a.reuse_input:
        try:
            from connecto.volume import Volume
            v = Volume(inp); reuse = v.shape == tuple(shape) and tuple(v.chunks) == tuple(chunks)
        except Exception: pass
    if not reuse:
        rmtree(wd / 'input.zarr')
        g = generate_input(inp, shape, chunks)
    stored = du(wd / 'input.zarr')
    print(f"  {'reused' if reuse else f'generated in {g.seconds:.1f} s'}, {stored / 2**30:.2f} GiB stored (zstd-3 ratio {np.prod(shape) / stored:.2f})", flush=True)

    c2, dk, c1, reports, conts = [], [], [], [], []
    c_out, d_out = str(wd / 'connecto.zarr/smooth'), str(wd / 'dask.zarr')
    check = None
    for r in range(a.reps):
        # alternate the order so that neither side always runs on a warmer page cache
        order = ['connecto', 'dask'] if r % 2 == 0 else ['dask', 'connecto']
        for what in order:
            if what == 'connecto':
                with Contention() as ct: w, rep = run_connecto(inp, c_out, shape, chunks, halo, a.sigma, 2)
                conts.append(ct); c2.append(w); reports.append(rep.to_dict())
                print(f"  rep {r}: connecto workers=2 {w:.2f} s wall (report.seconds {rep.seconds:.2f}, "
                      f"{rep.voxels_per_second / 1e6:.1f} Mvox/s; foreign load {ct.share:.0%})", flush=True)
            else:
                with Contention() as ct: w, comp = run_dask(inp, d_out, chunks, a.halo, a.sigma)
                conts.append(ct); dk.append((w, comp))
                print(f"  rep {r}: dask map_overlap {w:.2f} s wall ({comp:.2f} s compute after cluster start; foreign load {ct.share:.0%})", flush=True)
        if check is None:
            check = max_abs_diff(c_out, d_out, shape, chunks)
            print(f"  max |connecto - dask| = {check:g}", flush=True)
    rmtree(wd / 'dask.zarr')
    for r in range(a.reps_w1):
        with Contention() as ct: w, rep = run_connecto(inp, c_out, shape, chunks, halo, a.sigma, 1)
        conts.append(ct); c1.append(w)
        print(f"  rep {r}: connecto workers=1 {w:.2f} s wall (report.seconds {rep.seconds:.2f}; foreign load {ct.share:.0%})", flush=True)

    warm = None
    if a.warm:
        cluster, client = dask_cluster()
        try:
            wc, wd_ = [], []
            for r in range(a.warm):
                with Contention() as ct: wc.append(run_connecto(inp, c_out, shape, chunks, halo, a.sigma, 2, client=client)[0])
                conts.append(ct)
                with Contention() as ct: wd_.append(run_dask(inp, d_out, chunks, a.halo, a.sigma, client=client)[0])
                conts.append(ct)
                print(f"  warm rep {r}: connecto {wc[-1]:.2f} s, dask {wd_[-1]:.2f} s", flush=True)
            warm = (median(wc), median(wd_), wc, wd_)
        finally:
            client.close(); cluster.close()
    out_stored = du(wd / 'connecto.zarr')
    rmtree(wd / 'dask.zarr'); rmtree(wd / 'connecto.zarr')
    if not a.keep: rmtree(wd / 'input.zarr')

    mc2, md = median(c2), median([d[0] for d in dk])
    ratio = mc2 / md
    mc1 = median(c1) if c1 else float('nan')
    speedup = mc1 / mc2
    res = dict(shape=shape, chunks=chunks, connecto_w2=c2, dask=dk, connecto_w1=c1, ratio=ratio, speedup=speedup,
               max_abs_diff=check, warm=warm)
    print(json.dumps(res, default=str, indent=1))
    verdict = 'met' if ratio <= 1.10 else 'MISSED'
    body = f"""Kernel: `scipy.ndimage.gaussian_filter(sigma={a.sigma}, output=float32)` per block, halo {a.halo}, over a generated
{shape[0]}x{shape[1]}x{shape[2]} uint8 Zarr v3 volume ({gb:.2f} GiB, chunks {chunks[0]}x{chunks[1]}x{chunks[2]}, zstd-3, {stored / 2**30:.2f} GiB
on disk), output float32 zstd-3 with the same chunks ({out_stored / 2**30:.2f} GiB on disk). connecto: `run_blockwise` with
block = chunk, `pad_mode='symmetric'`; Dask: `da.from_zarr(...).map_overlap(depth={a.halo}, boundary='reflect').to_zarr(...)`
on `LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`. Times are wall clock, including output creation
and the start/stop of the cluster on both sides (connecto starts its own LocalCluster inside `run_blockwise`).
Data is warm in the page cache (24 GiB RAM), so this is CPU-bound.

| run | times (s) | median (s) | Mvoxel/s |
|---|---|---|---|
| connecto `run_blockwise`, workers=2 | {', '.join(f'{t:.1f}' for t in c2)} | {mc2:.1f} | {np.prod(shape) / mc2 / 1e6:.1f} |
| dask `map_overlap` + `to_zarr`, 2 procs | {', '.join(f'{t[0]:.1f}' for t in dk)} | {md:.1f} | {np.prod(shape) / md / 1e6:.1f} |
| connecto `run_blockwise`, workers=1 | {', '.join(f'{t:.1f}' for t in c1)} | {mc1:.1f} | {np.prod(shape) / mc1 / 1e6:.1f} |

- **time ratio connecto / dask (workers=2, medians): {ratio:.3f}** (target <= 1.10: {verdict})
- dask compute time after cluster start-up: {', '.join(f'{t[1]:.1f}' for t in dk)} s
- connecto speed-up workers=1 -> workers=2: **{speedup:.2f}x**
- outputs agree: max |connecto - dask| = {check:g} (checked once, over the whole volume)
"""
    if warm:
        body += (f"- same pre-started cluster for both (no start-up in the time, `run_blockwise(client=...)`): connecto "
                 f"{', '.join(f'{t:.1f}' for t in warm[2])} s (median {warm[0]:.1f}), dask {', '.join(f'{t:.1f}' for t in warm[3])} s "
                 f"(median {warm[1]:.1f}), ratio **{warm[0] / warm[1]:.3f}**\n")
    body += load_note(conts)
    if not a.no_results: update_results('engine_overhead', '1. Engine overhead: connecto run_blockwise vs dask map_overlap', body)

if __name__ == '__main__':
    main()
