"""Benchmark 8, inference overhead: `connecto predict` vs a bare loop of model forward passes over the same tiles, in one run.

A generated uint8 raw volume in Zarr; a U-Net checkpoint (random weights: speed does not depend on them). The bare loop
reads the whole volume into memory once, runs the model on exactly the tiles `predict` uses (same tile shape, same
context, batch 1; with the default block shape) and writes into a NumPy array: no engine, no Zarr writes, no blocks.
It runs one tile at a time on all cores (torch's intra-op threads), the way a plain script does. `predict` runs blockwise
through the engine with workers=0 (threads of this process), 1 and 2 (LocalCluster processes with cores / workers
threads each); it runs one tile per core, one torch thread each. Each run in a fresh subprocess, imports (torch, connecto) before its timer on both sides; medians over `--reps`. Every run has torch's huge-page CPU allocator
(`THP_MEM_ALLOC_ENABLE=1`, which `import connecto` sets) except the row "bare, 4 KiB pages", the bare loop with torch's
default allocator: what the same loop costs when nothing sets it. The row "bare, heap reuse" runs the bare loop with the glibc
settings that connecto's runs have (`MALLOC_MMAP_MAX_=0`, `MALLOC_TRIM_THRESHOLD_=1 GiB`, see `connecto.engine.heap_reuse`):
`predict`'s overhead against an equally tuned loop.

    python benchmarks/predict_overhead.py            # ~20 min on 2 cores
"""
from __future__ import annotations
import json, os, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine, median, today, bench_parser, fresh_dir, command, rmtree, finish
import numpy as np

HERE = Path(__file__).resolve().parent
JSON_OUT = HERE / 'results' / 'predict_overhead.json'
def log(*a): print(*a, file=sys.stderr, flush=True)
def triple(s): return tuple(int(v) for v in s.split(','))

def setup(wd:Path, shape, features:int)->dict:
    "The raw volume and the checkpoint."
    import torch
    from connecto.volume import from_array
    from connecto.unet import UNet3D, UNetConfig, save_checkpoint
    rng = np.random.default_rng(0)
    from_array(rng.integers(0, 256, shape, dtype=np.uint8), str(wd / 'raw.zarr/raw'), chunks=(64, 128, 128))
    torch.manual_seed(0)
    save_checkpoint(str(wd / 'unet.pt'), UNet3D(UNetConfig(features=features, factors=[[1, 2, 2], [2, 2, 2]])))
    return dict(raw=str(wd / 'raw.zarr/raw'), model=str(wd / 'unet.pt'))

def bare(raw:str, model:str, tile)->dict:
    "Forward passes over `predict`'s tiles of the whole volume, in memory."
    import torch
    from connecto.unet import load_checkpoint
    from connecto.volume import Volume
    from connecto.blocks import Roi
    from connecto.predict import output_tiles, _valid_tile
    net, _ = load_checkpoint(model)
    v = Volume(raw); shape = v.shape
    t0 = time.perf_counter()
    ctx = net.cfg.context(); t = _valid_tile(net.cfg, tile)
    padded = np.pad(v[...], [(c, c + tt) for c, tt in zip(ctx, t)], mode='reflect').astype(np.float32) / 255
    out = np.zeros((net.cfg.out_channels,) + tuple(shape), np.float32)
    tiles = output_tiles(Roi((0, 0, 0), shape), t, net.cfg.total_factor)
    t1 = time.perf_counter()
    with torch.no_grad():
        for r in tiles:
            x = padded[tuple(slice(s, s + tt + 2 * c) for s, tt, c in zip(r.start, t, ctx))]
            y = net(torch.from_numpy(np.ascontiguousarray(x))[None, None]).numpy()[0]
            sl = tuple(slice(s, min(s + tt, n)) for s, tt, n in zip(r.start, t, shape))
            out[(slice(None),) + sl] = y[(slice(None),) + tuple(slice(0, q.stop - q.start) for q in sl)]
    return dict(seconds=time.perf_counter() - t0, forward_seconds=time.perf_counter() - t1, tiles=len(tiles))

def connecto_predict(raw:str, model:str, tile, workers:int, block_shape, out:str)->dict:
    import torch, connecto.unet                                 # imported before the timer, as in `bare`
    from connecto.predict import predict
    from connecto.config import Config
    rmtree(Path(out).parent)
    t0 = time.perf_counter()
    r = predict(raw, model, out, block_shape=block_shape, tile=tile, config=Config(num_workers=workers), progress=False)
    return dict(seconds=time.perf_counter() - t0, blocks=r.blocks_done)

def child(task:str):
    t = json.loads(task)
    what = t.pop('what')
    res = bare(**t) if what == 'bare' else connecto_predict(**t)
    print(json.dumps(res))

def run(task:dict, huge_pages:bool=True, heap:bool=False)->dict:
    from connecto.cluster import _HEAP_ENVIRON as HEAP_ENVIRON
    env = {**os.environ, 'THP_MEM_ALLOC_ENABLE': '1' if huge_pages else '0', **(HEAP_ENVIRON if heap else {})}
    r = subprocess.run([sys.executable, __file__, '--child', json.dumps(task)], capture_output=True, text=True, env=env)
    if r.returncode: raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])

def markdown(res:dict)->str:
    b = median([r['seconds'] for r in res['runs']['bare']])
    n = int(np.prod(res['shape']))
    s = (f"<!-- BEGIN predict_overhead -->\n## 8. Inference overhead: `connecto predict` vs a bare forward loop\n\n- date: {res['date']}\n"
         f"- machine: {res['machine']}\n- command: `{res['command']}`\n\nRaw {'x'.join(map(str, res['shape']))} uint8 in Zarr; U-Net "
         f"{res['features']} feature maps, levels (1,2,2), (2,2,2), valid; bare-loop tiles {res['tile']} ({res['runs']['bare'][0]['tiles']} over the volume in memory); blocks {res['block_shape']}, "
         f"`predict` with its default tiles (about 32x128x128, dividing each block evenly: with the default blocks, exactly the bare loop's tiles). Medians of {res['reps']} runs, "
         "each in a fresh process.\n\n| run | times (s) | median (s) | Mvoxel/s | time / bare loop |\n|---|---|---|---|---|\n")
    for k, rs in res['runs'].items():
        m = median([r['seconds'] for r in rs])
        times = ', '.join(f"{r['seconds']:.1f}" for r in rs)
        s += f"| {k} | {times} | {m:.1f} | {n / m / 1e6:.2f} | {m / b:.2f}x |\n"
    if 'bare, heap reuse' in res['runs']:
        h = median([r['seconds'] for r in res['runs']['bare, heap reuse']])
        s += ("\nAgainst the bare loop with the same glibc settings: " + ', '.join(
            f"{k} {median([r['seconds'] for r in rs]) / h:.2f}x" for k, rs in res['runs'].items() if k.startswith('predict')) + "\n")
    return s + '<!-- END predict_overhead -->\n'

def main():
    ap = bench_parser(__doc__, '/tmp/connecto-bench/predict', JSON_OUT)
    ap.add_argument('--shape', type=triple, default=(64, 512, 512))
    ap.add_argument('--tile', type=triple, default=(32, 128, 128))
    ap.add_argument('--block-shape', type=triple, default=(64, 256, 256))
    ap.add_argument('--features', type=int, default=12)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--child', help=__import__('argparse').SUPPRESS)
    a = ap.parse_args()
    if a.child: return child(a.child)
    if a.from_json: return print(markdown(json.loads(Path(a.from_json).read_text())))
    wd = fresh_dir(a.workdir)
    spec = setup(wd, a.shape, a.features)
    runs = {k: [] for k in ('bare', 'bare, 4 KiB pages', 'bare, heap reuse', 'predict w0', 'predict w1', 'predict w2')}
    for r in range(a.reps):
        for k in (list(runs) if r % 2 == 0 else list(runs)[::-1]):      # alternate the order: no run always goes first
            task = dict(what='bare', tile=list(a.tile), **spec) if k.startswith('bare') else dict(
                what='predict', tile=None, workers=int(k[-1]), block_shape=list(a.block_shape), out=str(wd / 'p.zarr/aff'), **spec)
            runs[k].append(run(task, huge_pages=k != 'bare, 4 KiB pages', heap=k == 'bare, heap reuse')); log(f"rep {r} {k}: {runs[k][-1]['seconds']:.1f} s")
    res = dict(date=today(), machine=machine(), command=command(), shape=list(a.shape), tile=list(a.tile), block_shape=list(a.block_shape),
               features=a.features, reps=a.reps, runs=runs)
    finish(res, a.json, markdown, wd)

if __name__ == '__main__':
    main()
