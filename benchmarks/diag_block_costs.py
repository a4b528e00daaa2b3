"""Diagnostic (single process, no cluster): where the time of one interior block of the engine_overhead kernel goes.
Reads the block's context (core 64x256x256 + halo 8 = 80x272x272, which touches 3x3x3 = 27 storage chunks) vs
its core only (1 chunk), the Gaussian itself, the float32 write, and the cost of unpickling a `Volume` (done
for every task, since kwargs travel with each block).

    python benchmarks/diag_block_costs.py
"""
import pickle, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import bench_kernels as K
from bench_common import rmtree

def best(f, n=5):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return min(ts)

def main():
    from connecto.volume import Volume, create_volume
    from connecto.blocks import BlockGrid
    wd = Path('/tmp/connecto-bench/diag'); rmtree(wd)
    shape, chunks = (192, 768, 768), (64, 256, 256)
    src = create_volume(str(wd / 'd.zarr/raw'), shape, 'uint8', chunks=chunks)
    for b in BlockGrid(shape, chunks): src.write(b.core.start, K.synth_region(b.core.start, b.core.shape))
    dst = create_volume(str(wd / 'd.zarr/out'), shape, 'float32', chunks=chunks)
    src = Volume(str(wd / 'd.zarr/raw'))
    blk = BlockGrid(shape, chunks, 8)[13]   # the centre block: interior
    from scipy.ndimage import gaussian_filter
    ctx = src.read(blk.context.start, blk.context.stop, pad_mode='symmetric')
    out = gaussian_filter(ctx, 2.0, output=np.float32)[blk.core_in_context]
    r = {
        'read context (27 chunks)': best(lambda: src.read(blk.context.start, blk.context.stop, pad_mode='symmetric')),
        'read core (1 chunk)': best(lambda: src.read(blk.core.start, blk.core.stop)),
        'gaussian_filter': best(lambda: gaussian_filter(ctx, 2.0, output=np.float32)),
        'write float32 core (zstd-3)': best(lambda: dst.write(blk.core.start, out)),
        'unpickle Volume x2 (src, dst)': best(lambda: (pickle.loads(pickle.dumps(src)), pickle.loads(pickle.dumps(dst)))),
        'whole gaussian_block': best(lambda: K.gaussian_block(blk, src, dst)),
    }
    for k, v in r.items(): print(f"{k:32s} {v * 1e3:8.1f} ms")
    rmtree(wd)

if __name__ == '__main__':
    main()
