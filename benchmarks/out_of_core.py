"""Benchmark 2, out of core: ingest a large uint8 .npy (memory-mapped) into Zarr with `connecto.ingest.ingest`
(workers=2), then run one cheap blockwise kernel (255 - x, uint8) over the result with `run_blockwise`, while a
thread samples the RSS of the whole process tree (this process + Dask nannies + workers) every 0.2 s.

    python benchmarks/out_of_core.py                               # 512x4096x4096 = 8 GiB
    python benchmarks/out_of_core.py --shape 64,1024,1024 --no-results   # smoke test

Needs about 2.5x the volume size free on the disk of --workdir; everything is deleted at the end (unless --keep).
"""
from __future__ import annotations
import argparse, json, logging, os, shutil, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import setup_workers_path, update_results, rmtree, du, gib, TreeRSS, _proc_status

K = setup_workers_path()
import numpy as np

def triple(s): return tuple(int(v) for v in s.split(','))

def make_npy(path, shape, slab=64):
    "Write a compressible uint8 .npy in z-slabs through np.lib.format.open_memmap."
    a = np.lib.format.open_memmap(path, mode='w+', dtype=np.uint8, shape=shape)
    t = K.template()  # 64 x 512 x 512
    tz, ty, tx = t.shape
    for z in range(0, shape[0], slab):
        nz = min(slab, shape[0] - z)
        for y in range(0, shape[1], ty):
            for x in range(0, shape[2], tx):
                ny, nx = min(ty, shape[1] - y), min(tx, shape[2] - x)
                shift = np.uint8(((z // slab) * 5 + (y // ty) * 3 + (x // tx) * 7) % 16)
                src = t[(np.arange(nz) + z) % tz, :ny, :nx]
                np.add(src, shift, out=a[z:z + nz, y:y + ny, x:x + nx], casting='unsafe')
        a.flush()
    del a

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--shape', type=triple, default=(512, 4096, 4096))
    ap.add_argument('--block-shape', type=triple, default=(64, 512, 512))
    ap.add_argument('--workers', type=int, default=2)
    ap.add_argument('--workdir', default='/tmp/connecto-bench/ooc')
    ap.add_argument('--keep', action='store_true')
    ap.add_argument('--no-results', action='store_true')
    a = ap.parse_args()
    from connecto.ingest import ingest
    from connecto.volume import Volume, create_volume
    from connecto.blocks import BlockGrid
    from connecto.engine import run_blockwise, Task
    from connecto.config import Config
    logging.getLogger('distributed').setLevel(logging.ERROR)
    wd = Path(a.workdir); rmtree(wd); wd.mkdir(parents=True, exist_ok=True)
    shape, bs = a.shape, a.block_shape
    nbytes = int(np.prod(shape))
    free = shutil.disk_usage(wd).free
    print(f"volume {shape} uint8 = {gib(nbytes):.2f} GiB; free on {wd}: {gib(free):.1f} GiB", flush=True)
    if free < 2.5 * nbytes: sys.exit(f"not enough free disk space: need ~{gib(2.5 * nbytes):.1f} GiB")
    npy, raw, inv = str(wd / 'big.npy'), str(wd / 'big.zarr/raw'), str(wd / 'big.zarr/inverted')

    t = time.perf_counter(); make_npy(npy, shape); t_gen = time.perf_counter() - t
    s = _proc_status(os.getpid())
    print(f"generated {npy} in {t_gen:.1f} s (parent RSS after: anon {gib(s['RssAnon']):.2f} GiB, file {gib(s['RssFile']):.2f} GiB)", flush=True)

    with TreeRSS(0.2) as all_rss:
        with TreeRSS(0.2) as ing_rss:
            t = time.perf_counter()
            r1 = ingest(npy, raw, block_shape=bs, config=Config(num_workers=a.workers), progress=False)
            t_ing = time.perf_counter() - t
        stored = du(wd / 'big.zarr')
        print(f"ingest: {t_ing:.1f} s ({nbytes / t_ing / 1e6:.0f} MB/s), {r1.blocks_done} blocks, peak tree RSS "
              f"{gib(ing_rss.peak):.2f} GiB (anon {gib(ing_rss.peak_anon):.2f}), zarr {gib(stored):.2f} GiB on disk", flush=True)
        with TreeRSS(0.2) as k_rss:
            t = time.perf_counter()
            src = Volume(raw)
            dst = create_volume(inv, shape, 'uint8', chunks=src.chunks, compression='zstd', compression_level=3)
            r2 = run_blockwise(Task('invert', BlockGrid(shape, bs), inv, K.invert_block, dict(src=src, dst=dst)),
                               Config(num_workers=a.workers), progress=False)
            t_k = time.perf_counter() - t
        print(f"invert kernel: {t_k:.1f} s ({nbytes / t_k / 1e6:.0f} MB/s), peak tree RSS {gib(k_rss.peak):.2f} GiB "
              f"(anon {gib(k_rss.peak_anon):.2f})", flush=True)
    # spot check: a few blocks of the output are 255 - input
    src_npy = np.load(npy, mmap_mode='r'); outv = Volume(inv)
    g = BlockGrid(shape, bs)
    for bid in np.linspace(0, len(g) - 1, 5).astype(int):
        b = g[int(bid)]
        assert np.array_equal(outv[b.core.slices], 255 - np.asarray(src_npy[b.core.slices])), f'block {bid} differs'
    del src_npy
    print("spot check of 5 blocks: ok", flush=True)
    if not a.keep: rmtree(wd)

    peak = all_rss.peak
    res = dict(shape=shape, gib=gib(nbytes), t_gen=t_gen, t_ingest=t_ing, t_kernel=t_k, peak_rss_gib=gib(peak),
               peak_anon_gib=gib(all_rss.peak_anon), peak_ingest_gib=gib(ing_rss.peak), peak_kernel_gib=gib(k_rss.peak),
               ratio=nbytes / peak, procs=all_rss.peak_procs, samples=all_rss.samples)
    print(json.dumps(res, default=str, indent=1))
    verdict = 'met' if peak <= 2 * 2**30 else 'MISSED'
    body = f"""Source: a {shape[0]}x{shape[1]}x{shape[2]} uint8 `.npy` ({gib(nbytes):.2f} GiB, written in 64-slice slabs through
`np.lib.format.open_memmap` in {t_gen:.0f} s; compressible content), ingested with
`ingest(npy, zarr, block_shape={bs}, config=Config(num_workers={a.workers}))` (Zarr v3, zstd-3, chunks = blocks; {gib(stored):.2f} GiB on disk
incl. the new volume below), then `run_blockwise` of a cheap kernel (`255 - x`, uint8 out, same blocks, workers={a.workers}).
RSS of the whole process tree (this process + {all_rss.peak_procs - 1} children: Dask nannies and workers), summed from
`/proc/PID/status` (RssAnon + RssFile + RssShmem = psutil `rss`) every 0.2 s in a thread; {all_rss.samples} samples.

| stage | time (s) | MB/s (uncompressed) | peak tree RSS (GiB) | of which anonymous (GiB) |
|---|---|---|---|---|
| ingest .npy -> Zarr | {t_ing:.1f} | {nbytes / t_ing / 1e6:.0f} | {gib(ing_rss.peak):.2f} | {gib(ing_rss.peak_anon):.2f} |
| blockwise `255 - x` | {t_k:.1f} | {nbytes / t_k / 1e6:.0f} | {gib(k_rss.peak):.2f} | {gib(k_rss.peak_anon):.2f} |
| **both** | {t_ing + t_k:.1f} | | **{gib(peak):.2f}** | {gib(all_rss.peak_anon):.2f} |

- **peak RSS {gib(peak):.2f} GiB** (target <= 2 GiB: {verdict}); volume size / peak RSS = **{nbytes / peak:.1f}x**
- output checked: 5 blocks equal `255 - input`
- the page cache is not counted (the machine has {gib(__import__('psutil').virtual_memory().total):.0f} GiB RAM, so the files stay cached; RSS counts only pages mapped by the processes)
"""
    if not a.no_results: update_results('out_of_core', '2. Out of core: ingest + one blockwise kernel, peak RSS', body)

if __name__ == '__main__':
    main()
