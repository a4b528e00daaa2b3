"""Same-run A/B of the block order and the chunk cache (RESULTS 4f, 4g): the fragment stage on Zarr affinities, with the
sweep order and each worker process's contiguous run of blocks ("new") against C order with no runs per worker ("C",
patched in), each run in a fresh process, the configurations alternating. Prints each run and the medians; chunk decodes
are `CHUNK_CACHE.misses` summed over all processes, peak RSS the largest sum over the process tree (sampled every 0.1 s).
The timer includes the start of the run's cluster.

    python benchmarks/block_order_ab.py --reps 3 new:0:1 C:0:1 new:0:0 C:0:0 new:2:0 C:2:0
    python benchmarks/block_order_ab.py --shape 256,1024,768 --reps 3 new:2:0:1 new:2:0:1.9   # RESULTS 4g

The affinities (`--affinities`, default generated once like section 4's volume at scale: 3x128x1024x768 float32 Voronoi
affinities, chunks 64x256x256, 1.12 GiB; `--shape` for another size, in its own folder) are kept between runs.

A configuration is ORDER:WORKERS:ONE_THREAD[:CACHE_GB] (ORDER new or C; WORKERS 0 = threads of the process; ONE_THREAD
1 = one thread, 0 = as many as cores; CACHE_GB the config's `cache_size_gb`, default 1).
"""
import argparse, json, statistics, subprocess, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import TreeRSS

CHILD = r'''
import sys, json, time, shutil
import numpy as np
import connecto.engine as E, connecto.volume as V
from connecto.cluster import shared_cluster, shared_client
from connecto.fragments import fragments, _load_kernels
F = sys.modules['connecto.fragments']                         # the module (the package's attribute is the function)
from connecto.config import Config
import distributed, numba, cc3d, fastremap                  # imported lazily by the stage: not timed
aff, out, order, w, one, cache = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == '1', float(sys.argv[6])
if order == 'C':
    F.block_order = lambda volume, grid: np.arange(len(grid))
    E._spread = lambda ids, *a, **k: (np.asarray(ids), None, [])
shutil.rmtree(out, ignore_errors=True)
_load_kernels()
t = time.perf_counter()
with shared_cluster(w, 1 if one else None):
    fr = fragments(aff, f'{out}/fragments', kind='affinities', block_shape=(64, 256, 256), halo=16, progress=False, config=Config(cache_size_gb=cache))
    others = sum(shared_client().run(lambda: __import__('connecto.volume').volume.CHUNK_CACHE.misses).values()) if w else 0
print(json.dumps(dict(seconds=time.perf_counter() - t, decodes=V.CHUNK_CACHE.misses + others, fragments=fr.fragments)))
'''

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('configs', nargs='+', help='ORDER:WORKERS:ONE_THREAD[:CACHE_GB], e.g. new:0:1 C:0:1 new:2:0:1.9')
    ap.add_argument('--shape', default='128,1024,768', help='z,y,x of the generated affinities')
    ap.add_argument('--affinities', help='Zarr spec of (3, z, y, x) float32 affinities; generated when missing '
                    '(default /tmp/connecto-bench/block_order/SHAPE.zarr/affinities)')
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--out', default='/tmp/connecto-bench/block_order/run.zarr')
    a = ap.parse_args()
    shape = tuple(int(v) for v in a.shape.split(','))
    a.affinities = a.affinities or f"/tmp/connecto-bench/block_order/{'x'.join(map(str, shape))}.zarr/affinities"
    if not Path(a.affinities.split('.zarr')[0] + '.zarr').exists():
        from segment_vs_waterz import write_voronoi
        print('generating', a.affinities, write_voronoi(a.affinities, shape, (64, 256, 256)), flush=True)
    runs = {}
    for r in range(a.reps):
        for cfg in (a.configs if r % 2 == 0 else a.configs[::-1]):
            order, w, one, cache = (cfg.split(':') + ['1'])[:4]
            with TreeRSS(0.1) as rss:
                p = subprocess.run([sys.executable, '-c', CHILD, a.affinities, a.out, order, w, one, cache], capture_output=True, text=True)
            if p.returncode: sys.exit(f"{cfg} failed:\n{p.stderr[-2000:]}")
            d = dict(json.loads(p.stdout.strip().splitlines()[-1]), peak_gib=round(rss.peak / 2**30, 2))
            runs.setdefault(cfg, []).append(d); print(cfg, d, flush=True)
    for cfg, ds in runs.items():
        print(f"{cfg}: median {statistics.median(d['seconds'] for d in ds):.2f} s, runs {[round(d['seconds'], 2) for d in ds]}, "
              f"decodes {[d['decodes'] for d in ds]}, peak RSS {max(d['peak_gib'] for d in ds)} GiB, fragments {ds[0]['fragments']}")

if __name__ == '__main__': main()
