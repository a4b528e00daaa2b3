"""Per-block kernels shared by the benchmarks. They live in a module (not in the scripts) so that Dask worker
processes can import them; the scripts also register this module with cloudpickle by value."""
import numpy as np

# ---------------------------------------------------------------- synthetic content
_TEMPLATES = {}

def template(shape=(64, 512, 512), seed=0) -> np.ndarray:
    """A smooth-ish random uint8 volume (low-frequency noise upsampled, quantised to steps of 8, + fine noise), cached per process.
    Compresses with zstd-3 to about 1.7x."""
    key = (tuple(shape), seed)
    if key not in _TEMPLATES:
        rng = np.random.default_rng(seed)
        z, y, x = shape
        coarse = rng.normal(0, 1, (-(-z // 8) + 1, -(-y // 16) + 1, -(-x // 16) + 1)).astype(np.float32)
        from scipy.ndimage import zoom
        smooth = zoom(coarse, (8, 16, 16), order=1)[:z, :y, :x]
        smooth = 128 + 40 * smooth / (smooth.std() + 1e-6)
        fine = np.rint(rng.normal(0, 0.7, shape)).astype(np.float32)
        _TEMPLATES[key] = np.clip(np.floor(smooth / 8) * 8 + fine, 0, 255).astype(np.uint8)
    return _TEMPLATES[key]

def synth_region(start, shape, seed=0) -> np.ndarray:
    """Content for the region at `start` of `shape`: a window of a (cached) template chosen by `start`, so that
    neighbouring chunks differ. A view when the region fits in the template (no copy, no random generation after
    the first call), else the template tiled."""
    t = template(seed=seed)
    h = hash(tuple(int(s) for s in start)) & 0xFFFFFFFF
    if all(n <= m for n, m in zip(shape, t.shape)):
        o = [(h >> (8 * i)) % (m - n + 1) for i, (n, m) in enumerate(zip(shape, t.shape))]
        return t[o[0]:o[0] + shape[0], o[1]:o[1] + shape[1], o[2]:o[2] + shape[2]]
    idx = [(np.arange(n) + (h >> (8 * i))) % m for i, (n, m) in enumerate(zip(shape, t.shape))]
    return t[np.ix_(*idx)]

# ---------------------------------------------------------------- connecto block functions
def generate_block(block, dst, seed=0):
    "Write synthetic content into the block's core."
    dst.write(block.core.start, synth_region(block.core.start, block.core.shape, seed))

def gaussian_block(block, src, dst, sigma=2.0):
    "3D Gaussian of the block's context (symmetric padding at the border), core written as float32."
    from scipy.ndimage import gaussian_filter
    data = src.read(block.context.start, block.context.stop, pad_mode='symmetric')
    out = gaussian_filter(data, sigma, output=np.float32)
    dst.write(block.core.start, out[block.core_in_context])

def copy_block(block, src, dst):
    "Copy the core from src to dst."
    dst.write(block.core.start, src.read(block.core.start, block.core.stop))

def read_block(block, src):
    "Read (decode) the core and drop it."
    a = src.read(block.core.start, block.core.stop)
    return int(a.shape[0])

def write_block(block, dst, seed=0):
    """Write synthetic content into the core: the write path of the engine. The content of each storage chunk is
    `synth_region(chunk start, chunk shape)`, so any block shape writes the same array as tensorstore's per-chunk writes."""
    chunks = dst.chunks[-3:]
    if tuple(block.core.shape) == tuple(min(c, s - a) for c, s, a in zip(chunks, dst.shape, block.core.start)):
        dst.write(block.core.start, synth_region(block.core.start, block.core.shape, seed)); return
    out = np.empty(block.core.shape, dst.dtype)
    for idx in np.ndindex(*[-(-n // c) for n, c in zip(block.core.shape, chunks)]):
        lo = [i * c for i, c in zip(idx, chunks)]
        hi = [min(l + c, n) for l, c, n in zip(lo, chunks, block.core.shape)]
        start = tuple(a + l for a, l in zip(block.core.start, lo))
        out[tuple(slice(l, h) for l, h in zip(lo, hi))] = synth_region(start, tuple(h - l for l, h in zip(lo, hi)), seed)
    dst.write(block.core.start, out)

def invert_block(block, src, dst):
    "A cheap per-block op: 255 - x (uint8)."
    a = src.read(block.core.start, block.core.stop)
    np.subtract(255, a, out=a)
    dst.write(block.core.start, a)

# ---------------------------------------------------------------- dask map_overlap function
def gaussian_chunk(x, sigma=2.0):
    from scipy.ndimage import gaussian_filter
    return gaussian_filter(x, sigma, output=np.float32)
