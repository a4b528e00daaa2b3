"""Benchmark 4, segmentation: connecto `fragments` + `agglomerate` vs waterz (zwatershed + `OneMinus<MeanAffinity>`).

Parts (`--parts`, default all):
  quality   threshold sweep 0.1..0.9 on fibsem-gala and snemi-mini: VOI split/merge/total and ARAND of
            (a) connecto fragments + connecto agglomeration, (b) waterz with its own fragments on the same affinities,
            (c) both agglomerators on the given fragments (train-ws / train-fragments); best VOI; threshold transfer
  speed     a generated Voronoi-like 64x512x512 volume (affinities in Zarr): connecto fragments + agglomerate (t=0.5)
            with one thread, workers=0 (2 threads), 1 and 2 worker processes vs waterz (single-threaded, one threshold),
            each run in a subprocess (peak RSS of its tree)
  large     generated float32 affinities of 1.1 and 2.25 GiB (3x128x1024x768, 3x256x1024x768), written blockwise to Zarr;
            connecto fragments + agglomerate with workers=2, blocks 64x256x256; wall time, voxels/s, peak RSS of the process
            tree, once with the default config and once with cache_size_gb=0.25 (`--large-cache-gb`): equal peaks for
            both sizes show memory bounded by the block, not the volume

Prints a Markdown section to stdout (progress goes to stderr) and writes benchmarks/results/segment_vs_waterz.json.

    python benchmarks/segment_vs_waterz.py                      # everything, ~20 min on 2 cores
    python benchmarks/segment_vs_waterz.py --parts quality      # ~2 min
    # smoke test, ~3 min:
    python benchmarks/segment_vs_waterz.py --speed-shape 32,256,256 --large-shapes '32,256,512;64,256,512' --reps 1 --large-cache-gb default --json /tmp/smoke.json
    python benchmarks/segment_vs_waterz.py --from-json benchmarks/results/segment_vs_waterz.json   # Markdown again

Run from the repository root (sample data are found with `connecto.volume.sample_data`, i.e. `shared/data` above the
working directory, or $CONNECTO_DATA).
"""
from __future__ import annotations
import argparse, contextlib, ctypes, json, logging, os, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine, median, gib, rmtree, du, TreeRSS, Contention, load_note
import numpy as np

HERE = Path(__file__).resolve().parent
JSON_OUT = HERE / 'results' / 'segment_vs_waterz.json'
THRESHOLDS = [round(0.1 * i, 1) for i in range(1, 10)]
VOLUMES = {  # name: boundary map, ground truth, given fragments (relative to the sample data folder); invert: use 1 - map;
             # table: full table and threshold transfer (else only in the best-VOI table)
    'fibsem-gala': dict(src='fibsem-gala/train-p1.lzf.h5:stack', gt='fibsem-gala/train-gt.lzf.h5:stack',
                        frags='fibsem-gala/train-ws.lzf.h5:stack', invert=False, table=True),
    # the stored SNEMI map is high inside cells and low on membranes (a cell-interior probability): inverted here
    'snemi-mini': dict(src='snemi-mini/train-probabilities.tif', gt='snemi-mini/train-labels.tif',
                       frags='snemi-mini/train-fragments.tif', invert=True, table=True),
    'snemi-mini, map as stored': dict(src='snemi-mini/train-probabilities.tif', gt='snemi-mini/train-labels.tif',
                                      frags='snemi-mini/train-fragments.tif', invert=False, table=False),
}
METHODS = {'a': 'connecto fragments + connecto agglomerate', 'b': 'waterz (own zwatershed fragments)',
           'c_connecto': 'connecto agglomerate, given fragments', 'c_waterz': 'waterz agglomerate, given fragments'}

def log(*a): print(*a, file=sys.stderr, flush=True)
def triple(s): return tuple(int(v) for v in s.split(','))

# ---------------------------------------------------------------- small helpers
def sample_spec(rel:str)->str:
    "Absolute volume spec of a sample-data file (`name.h5:key` keeps its key)."
    from connecto.volume import sample_data
    path, _, key = rel.partition(':')
    return str(sample_data(path)) + (f':{key}' if key else '')

def read(spec:str)->np.ndarray:
    "The whole volume at `spec` as an array."
    from connecto.volume import Volume
    return Volume(spec)[...]

def as_boundary_float(b:np.ndarray)->np.ndarray:
    "A float32 boundary map in [0, 1] (integer maps scaled by their dtype's maximum, as connecto does)."
    return b.astype(np.float32) / np.iinfo(b.dtype).max if b.dtype.kind in 'ui' else b.astype(np.float32)

def boundary_affinities(b:np.ndarray)->np.ndarray:
    "Affinities (3, z, y, x) float32 of a boundary map: channel d at p = 1 - (b[p] + b[p - e_d]) / 2; 0 at index 0 along d."
    a = np.zeros((3,) + b.shape, np.float32)
    a[0, 1:] = 1 - (b[1:] + b[:-1]) / 2
    a[1, :, 1:] = 1 - (b[:, 1:] + b[:, :-1]) / 2
    a[2, :, :, 1:] = 1 - (b[:, :, 1:] + b[:, :, :-1]) / 2
    return a

@contextlib.contextmanager
def c_stdout_silenced():
    "Send file descriptor 1 to /dev/null (waterz's C++ code prints its progress there), so stdout stays Markdown only."
    sys.stdout.flush()
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try: yield
    finally:
        ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1); os.close(saved); os.close(null)

def score(seg:np.ndarray, gt:np.ndarray)->dict:
    "VOI split/merge/total (bits) and ARAND of `seg` against `gt` (gt 0 ignored): `connecto.evaluate.voi` + `arand` in one table."
    from connecto.evaluate import Contingency, scores
    s = scores(Contingency.of(seg, gt))
    return {k: round(float(s[k]), 4) for k in ('voi_split', 'voi_merge', 'voi', 'arand')}

def versions()->dict:
    "Versions of the packages that matter here."
    import importlib.metadata as md
    out = {}
    for n in ('connecto', 'waterz', 'scikit-image', 'numpy', 'scipy', 'dask', 'zarr', 'tensorstore'):
        with contextlib.suppress(Exception): out[n] = md.version(n)
    return out

def utc_date()->str: return subprocess.run(['date', '-u', '+%F'], capture_output=True, text=True).stdout.strip()

# ---------------------------------------------------------------- segmentations
def connecto_sweep(src:str, frags:str|None, thresholds, wd:Path, kind='boundaries', **kw)->tuple:
    """connecto segmentations for each threshold: `fragments` of `src` (unless `frags` is given), then one `agglomerate`
    with all thresholds. Returns ({threshold: seg}, info)."""
    from connecto.fragments import fragments
    from connecto.agglomerate import agglomerate
    from connecto.config import Config
    rmtree(wd); wd.mkdir(parents=True)
    info = {}
    if frags is None:
        frags = str(wd / 'c.zarr/fragments')
        r = fragments(src, frags, kind=kind, progress=False, config=Config(num_workers=0), **kw)
        info['fragments'] = r.fragments
    rep = agglomerate(frags, src, str(wd / 'c.zarr/seg'), thresholds=thresholds, kind=kind, config=Config(num_workers=0), progress=False)
    info.update(graph_fragments=rep.fragments, edges=rep.edges)
    return {o['threshold']: read(o['out']) for o in rep.outputs}, info

def waterz_sweep(affs:np.ndarray, thresholds, frags:np.ndarray|None=None)->tuple:
    "waterz segmentations for each threshold (its own watershed unless `frags` is given). Returns ({threshold: seg}, info)."
    import waterz
    f = None if frags is None else np.ascontiguousarray(frags, np.uint64).copy()   # waterz overwrites the fragments
    with c_stdout_silenced():
        segs = [s.copy() for s in waterz.agglomerate(np.ascontiguousarray(affs), thresholds, fragments=f)]
    return dict(zip(thresholds, segs)), {}

def waterz_fragments(affs:np.ndarray)->int:
    "How many fragments waterz's own watershed makes (its segmentation at threshold 0)."
    seg = waterz_sweep(affs, [0.0])[0][0.0]
    return int(len(np.unique(seg[seg > 0])))

# ---------------------------------------------------------------- part 1: quality
def boundary_source(rel:str, invert:bool, wd:Path)->tuple:
    "(spec, float32 map) of a sample boundary map; an inverted one is written to a scratch Zarr volume (1 - map) first."
    from connecto.volume import from_array
    spec = sample_spec(rel)
    b = as_boundary_float(read(spec))
    if not invert: return spec, b
    b = 1 - b
    spec = str(wd / 'inverted.zarr/boundaries')
    rmtree(wd / 'inverted.zarr'); from_array(b, spec, chunks=b.shape)
    return spec, b

def map_check(b:np.ndarray, gt:np.ndarray)->dict:
    "Is `b` a boundary map? Its mean on the faces between ground-truth labels vs elsewhere, and the share of voxels above 0.5."
    faces = _edges(gt)
    return dict(on_faces=round(float(b[faces].mean()), 3), elsewhere=round(float(b[~faces].mean()), 3),
                above_half=round(float((b > 0.5).mean()), 3))

def quality_volume(name:str, wd:Path, thresholds)->dict:
    "All four methods on one sample volume: per method, per threshold, the scores and the number of segments."
    v = VOLUMES[name]
    src_rel, gt_rel, fr_rel = v['src'], v['gt'], v['frags']
    wd.mkdir(parents=True, exist_ok=True)
    src, b = boundary_source(src_rel, v['invert'], wd)
    fr_spec = sample_spec(fr_rel)
    gt, given = read(sample_spec(gt_rel)), read(fr_spec)
    affs = boundary_affinities(b)
    runs = {'a': lambda: connecto_sweep(src, None, thresholds, wd / 'a'),
            'b': lambda: waterz_sweep(affs, thresholds),
            'c_connecto': lambda: connecto_sweep(src, fr_spec, thresholds, wd / 'c'),
            'c_waterz': lambda: waterz_sweep(affs, thresholds, given)}
    out = dict(shape=list(gt.shape), source=src_rel + (' (inverted: 1 - map)' if v['invert'] else ''), gt=gt_rel, given_fragments=fr_rel,
               given_fragment_count=int(len(np.unique(given[given > 0]))), waterz_fragments=waterz_fragments(affs),
               stored_map=map_check(as_boundary_float(read(sample_spec(src_rel))), gt), methods={})
    for m, run in runs.items():
        t = time.perf_counter(); segs, info = run(); sec = time.perf_counter() - t
        rows = {str(th): {**score(seg, gt), 'segments': int(len(np.unique(seg[seg > 0])))} for th, seg in segs.items()}
        best = min(rows, key=lambda k: rows[k]['voi'])
        out['methods'][m] = dict(rows=rows, best=best, seconds=round(sec, 2), **info)
        log(f"  {name} {m}: best VOI {rows[best]['voi']:.3f} at t={best} ({sec:.1f} s)")
    return out

def transfer(q:dict)->list:
    "Threshold transfer: the best-VOI threshold of one volume applied to the other, for each method."
    names, rows = [n for n in q if VOLUMES[n]['table']], []
    for m in METHODS:
        for a, b in ((names[0], names[1]), (names[1], names[0])):
            ta, tb = q[a]['methods'][m]['best'], q[b]['methods'][m]['best']
            rb = q[b]['methods'][m]['rows']
            rows.append(dict(method=m, tuned_on=a, applied_to=b, threshold=ta, voi=rb[ta]['voi'], best_threshold=tb,
                             best_voi=rb[tb]['voi'], loss=round(rb[ta]['voi'] - rb[tb]['voi'], 4)))
    return rows

# ---------------------------------------------------------------- synthetic Voronoi volumes
def _hash_uniform(z, y, x, seed:int)->np.ndarray:
    "Uniform [0, 1) float32 noise from integer voxel coordinates (splitmix64), so blocks agree wherever they overlap."
    with np.errstate(over='ignore'):
        h = (z.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ (y.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)) \
            ^ (x.astype(np.uint64) * np.uint64(0x165667B19E3779F9)) ^ np.uint64(seed)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h >> np.uint64(40)).astype(np.float32) / np.float32(2 ** 24)

def _edges(lab:np.ndarray)->np.ndarray:
    "True on both sides of every face between different labels."
    b = np.zeros(lab.shape, bool)
    for ax in range(3):
        hi = [slice(None)] * 3; lo = [slice(None)] * 3
        hi[ax], lo[ax] = slice(1, None), slice(None, -1)
        d = lab[tuple(hi)] != lab[tuple(lo)]
        b[tuple(hi)] |= d; b[tuple(lo)] |= d
    return b

def voronoi_boundary(tree, lo, hi, sigma=1.0, noise=1.0, seed=0)->tuple:
    """Boundary map in [0, 1] and Voronoi labels over the region [lo, hi) (it may reach outside the volume): faces between
    cells of the nearest global seed point (weight 1.6) plus per-voxel hash noise, Gaussian-blurred (so the noise is smooth,
    as in a CNN prediction), clipped to [0, 1]. Only global coordinates enter, so overlapping blocks agree."""
    from scipy.ndimage import gaussian_filter
    m = int(np.ceil(4 * sigma)) + 1
    z, y, x = np.meshgrid(*[np.arange(a - m, b + m) for a, b in zip(lo, hi)], indexing='ij')
    lab = tree.query(np.stack([z.ravel(), y.ravel(), x.ravel()], 1).astype(np.float64), workers=-1)[1]
    lab = lab.reshape(z.shape).astype(np.uint32)
    raw = 1.6 * _edges(lab) + noise * (_hash_uniform(z, y, x, seed) - 0.5)
    del z, y, x
    core = (slice(m, -m),) * 3
    return np.clip(gaussian_filter(raw.astype(np.float32), sigma)[core], 0, 1), lab[core] + 1

def write_voronoi(aff_spec:str, shape, chunks, spacing=24., seed=0, gt_spec:str|None=None)->dict:
    """Generate float32 affinities (3, *shape) of a Voronoi boundary map into a new Zarr volume, one chunk at a time
    (never the whole volume in memory); optionally the Voronoi labels (uint32) as ground truth."""
    from scipy.spatial import cKDTree
    from connecto.volume import create_volume
    rng = np.random.default_rng(seed)
    n = max(2, int(np.prod(shape) / spacing ** 3))
    tree = cKDTree(rng.uniform(0, 1, (n, 3)) * np.asarray(shape, float))
    aff = create_volume(aff_spec, (3,) + tuple(shape), 'float32', chunks=chunks, overwrite=True)
    gt = create_volume(gt_spec, shape, 'uint32', chunks=chunks, overwrite=True) if gt_spec else None
    t = time.perf_counter()
    for idx in np.ndindex(*[-(-s // c) for s, c in zip(shape, chunks)]):
        lo = [i * c for i, c in zip(idx, chunks)]
        hi = [min(l + c, s) for l, c, s in zip(lo, chunks, shape)]
        b, lab = voronoi_boundary(tree, [l - 1 for l in lo], hi, seed=seed)   # one extra voxel on the low side
        a = boundary_affinities(b)[:, 1:, 1:, 1:]
        for d in range(3):                                                    # no neighbour before index 0
            if lo[d] == 0: a[(d,) + (slice(None),) * d + (0,)] = 0
        aff.write(lo, a)
        if gt is not None: gt.write(lo, lab[1:, 1:, 1:])
    return dict(cells=n, seconds=round(time.perf_counter() - t, 1), stored_gib=round(gib(du(aff_spec.split('.zarr')[0] + '.zarr')), 3))

# ---------------------------------------------------------------- subprocess runs (peak RSS per run)
def vm_hwm(pid)->int:
    """Peak RSS of a process so far (VmHWM of /proc/PID/status, bytes; 0 if gone). Exact, unlike sampling, and unlike
    getrusage's ru_maxrss it is not inherited from the parent at fork/exec."""
    try: return next(int(l.split()[1]) * 1024 for l in open(f'/proc/{pid}/status') if l.startswith('VmHWM:'))
    except (OSError, StopIteration): return 0

class ProcPeaks(TreeRSS):
    "`TreeRSS` that also keeps the peak RSS (VmHWM) of each process of the tree (pid -> bytes), to see where the memory is."
    def __init__(self, interval=0.1):
        super().__init__(interval); self.per_proc = {}
    def _sample(self):
        import psutil
        super()._sample()
        me = psutil.Process()
        for p in [me] + me.children(recursive=True):
            self.per_proc[p.pid] = max(self.per_proc.get(p.pid, 0), vm_hwm(p.pid))

def child(task_path:str):
    "Run one task described in a JSON file in this (child) process, write its result next to it."
    task = json.loads(Path(task_path).read_text())
    logging.getLogger('distributed').setLevel(logging.ERROR)
    with ProcPeaks(0.1) as rss:
        res = {'connecto': run_connecto, 'waterz': run_waterz}[task.pop('what')](**task)
    others = sorted((v for k, v in rss.per_proc.items() if k != os.getpid()), reverse=True)
    res.update(peak_tree_rss=rss.peak, peak_main=rss.per_proc.get(os.getpid(), 0), peak_others=others,
               peak_tree_anon=rss.peak_anon, peak_procs=rss.peak_procs, rss_samples=rss.samples)
    Path(task_path).with_suffix('.out.json').write_text(json.dumps(res))

HALO = 8   # connecto.fragments' default halo (16 before 2026-11-25; results files without 'halo' used 16)

def run_connecto(aff:str, out:str, workers:int, block_shape, threshold=0.5, halo=HALO, cache_gb=None, threads=None)->dict:
    """connecto fragments (affinities) + agglomerate (graph, merges, stitch) at one threshold, outputs in Zarr; times.
    `cache_gb`: the config's `cache_size_gb` (decoded-chunk cache per process), None = default."""
    from connecto.config import Config
    from connecto.fragments import fragments
    from connecto.agglomerate import agglomerate
    from connecto.cluster import shared_cluster
    import distributed, numba, cc3d, fastremap                 # imported lazily by the stages: imports are not timed (nor waterz's)
    from connecto.fragments import _load_kernels
    rmtree(out)
    cfg = Config() if cache_gb is None else Config(cache_size_gb=cache_gb)
    t = time.perf_counter()
    _load_kernels()                                            # numba's start and its cached machine code: once per process, timed apart
    kernel_load, t = time.perf_counter() - t, time.perf_counter()
    with shared_cluster(workers, threads):                      # one cluster for the three stages, as a pipeline runs them
        fr = fragments(aff, f'{out}/fragments', kind='affinities', block_shape=block_shape, halo=halo, progress=False, config=cfg)
        t1 = time.perf_counter()
        ag = agglomerate(f'{out}/fragments', aff, f'{out}/seg', thresholds=[threshold], kind='affinities', block_shape=block_shape,
                         progress=False, config=cfg)
    t2 = time.perf_counter()
    return dict(seconds=t2 - t, fragments_seconds=t1 - t, agglomerate_seconds=t2 - t1, stages=ag.stages, fragments=fr.fragments,
                edges=ag.edges, merges=ag.merges, segments=ag.outputs[0]['segments'], seg=ag.outputs[0]['out'],
                fragments_report_seconds=fr.seconds, cache_size_gb=cfg.cache_size_gb, kernel_load_seconds=kernel_load)

def run_waterz(aff:str, out:str, threshold=0.5, **_)->dict:
    "waterz (own watershed + agglomeration, one threshold) on the affinities read from Zarr; segmentation written to Zarr."
    import waterz
    from connecto.volume import Volume, from_array
    rmtree(out)
    t = time.perf_counter()
    v = Volume(aff); a = np.ascontiguousarray(v[...], np.float32)
    t1 = time.perf_counter()
    with c_stdout_silenced():
        seg = next(iter(waterz.agglomerate(a, [threshold]))).copy()
    t2 = time.perf_counter()
    del a
    from_array(seg, f'{out}/seg', chunks=v.chunks[-3:])
    t3 = time.perf_counter()
    return dict(seconds=t2 - t1, read_seconds=t1 - t, write_seconds=t3 - t2, end_to_end_seconds=t3 - t,
                segments=int(len(np.unique(seg[seg > 0]))), seg=f'{out}/seg')

def run_child(task:dict, wd:Path)->tuple:
    "Run `task` in a fresh Python process; returns (result dict, Contention of the run)."
    wd.mkdir(parents=True, exist_ok=True)
    p = wd / f"task-{task['what']}-{time.time_ns()}.json"
    p.write_text(json.dumps(task))
    with Contention() as ct:
        r = subprocess.run([sys.executable, str(Path(__file__).resolve()), '--child', str(p)], capture_output=True, text=True)
    if r.returncode: raise RuntimeError(f"child {task} failed:\n{r.stderr[-3000:]}")
    res = json.loads(p.with_suffix('.out.json').read_text())
    return res, ct

# ---------------------------------------------------------------- part 3: speed
def profile_blocks(aff:str, block_shape, halo=HALO, min_size=20)->dict:
    """Seconds of each step of connecto's `fragment_block`, summed over all blocks in the stage's order, in one thread: read (the first
    block decodes every chunk its context touches; later blocks find most of theirs in the chunk cache), boundary map and
    levels, seeds, the two floods of `connecto.fragments._flood` (the second floods the fragments below `min_size` again), the
    core's ids and sizes, its graph tables, and the write of its ids to Zarr (as the stage writes them, with its tables)."""
    import fastremap, tempfile, shutil
    from connecto.volume import open_volume, create_volume
    from connecto.blocks import BlockGrid, Roi
    from connecto.state import BlockTables
    from connecto.order import block_order
    from connecto.maps import boundary_levels
    from connecto.fragments import minima_seeds, core_ids, id_dtype, _core_levels, _Flood, _load_kernels
    from connecto.graph import core_tables
    v, out, t = open_volume(aff), {}, time.perf_counter()
    def lap(name):
        nonlocal t
        out[name] = round(out.get(name, 0.) + time.perf_counter() - t, 3); t = time.perf_counter()
    _load_kernels(); lap('numba (load or compile)')
    grid = BlockGrid(v.spatial_shape, block_shape, halo)
    stride, tmp = int(np.prod(block_shape)), tempfile.mkdtemp()
    dst = create_volume(f'{tmp}/f.zarr/fragments', v.spatial_shape, id_dtype(len(grid) * stride), chunks=block_shape)
    tables, faces = BlockTables(dst.spec, 'profile'), BlockTables(dst.spec, 'profile-faces')
    voxels = seeds = small_n = first_read = 0
    for block in (grid[int(i)] for i in block_order(v, grid)):            # in the stage's order
        ctx = block.context.intersect(Roi((0, 0, 0), v.spatial_shape))     # as fragment_block
        data = v.read(ctx.start, ctx.stop); lap('read')
        first_read = first_read or out['read']
        b, levels = boundary_levels(data, 'affinities'); lap('boundary map, 256 levels')
        s = minima_seeds(b); lap('minima_seeds')
        fl = _Flood(levels, s); f = fl.labels(); lap('flood')
        ids, counts = fastremap.unique(f, return_counts=True)
        small = ids[(counts < min_size) & (ids > 0)]
        if len(small):
            gone = np.zeros(int(ids[-1]) + 1, np.bool_); gone[small] = True
            fl.grow(gone); f = fl.labels()
        lap('flood again (small fragments)')
        core, sizes = core_ids(f, block.core.relative_to(ctx), block.id * stride, dst.dtype); lap('core ids and sizes')
        graph, face = core_tables(core, _core_levels(data, block.core, ctx, 'affinities'), sizes); lap('graph tables')
        faces.write(block.id, compress=True, **face); tables.write(block.id, **graph); dst.write(block.core.start, core); lap('write')
        voxels, seeds, small_n = voxels + int(b.size), seeds + int(s.max()), small_n + len(small)
    shutil.rmtree(tmp)
    return dict(out, voxels=voxels, seeds=seeds, small=small_n, blocks=len(grid), first_read=round(first_read, 3))

SPEED_RUNS = {'waterz': dict(what='waterz'), 'connecto t1': dict(what='connecto', workers=0, threads=1),
              'connecto w0': dict(what='connecto', workers=0), 'connecto w1': dict(what='connecto', workers=1),
              'connecto w2': dict(what='connecto', workers=2)}

def speed(wd:Path, shape, chunks, reps:int, names=tuple(SPEED_RUNS), profile=True)->dict:
    """Generate a Voronoi volume of `shape`, then time waterz and connecto (the runs `names` of `SPEED_RUNS`) `reps` times each
    in subprocesses, alternating; `profile`: also time the steps of the fragment stage block by block."""
    aff, gt = str(wd / 'speed.zarr/affinities'), str(wd / 'speed.zarr/gt')
    rmtree(wd / 'speed.zarr')
    gen = write_voronoi(aff, shape, chunks, gt_spec=gt)
    log(f"  speed volume {shape}: generated in {gen['seconds']} s, {gen['cells']} cells")
    cfgs = [(n, SPEED_RUNS[n]) for n in names]
    runs, conts = {k: [] for k, _ in cfgs}, []
    for r in range(reps):
        for name, task in (cfgs if r % 2 == 0 else cfgs[::-1]):        # alternate the order: no side always runs first
            out = str(wd / f"run-{name.replace(' ', '-')}.zarr")
            res, ct = run_child(dict(task, aff=aff, out=out, block_shape=list(chunks)), wd / 'tasks')
            runs[name].append(res); conts.append(ct)
            log(f"  rep {r} {name}: {res['seconds']:.1f} s, peak tree RSS {gib(res['peak_tree_rss']):.2f} GiB, "
                f"{res['segments']} segments (foreign load {ct.share:.0%})")
    g = read(gt)
    quality = {name: score(read(rs[-1]['seg']), g) for name, rs in runs.items()}
    return dict(shape=list(shape), chunks=list(chunks), halo=HALO, generate=gen, runs=runs, quality_vs_voronoi=quality,
                profile=profile_blocks(aff, chunks) if profile else None, load_note=load_note(conts), max_foreign=max(c.share for c in conts))

# ---------------------------------------------------------------- part 4: large volume
def large(wd:Path, shapes, chunks, workers:int, caches)->dict:
    """For each shape in `shapes` (the last >= 2 GiB): generate affinities blockwise, then connecto fragments + agglomerate in a
    subprocess, once per chunk-cache size in `caches` (None = the default config). Equal peaks for different sizes = bounded."""
    runs, gens, conts = [], [], []
    for shape in shapes:
        aff = str(wd / 'large.zarr/affinities')
        rmtree(wd / 'large.zarr')
        nbytes = 3 * int(np.prod(shape)) * 4
        log(f"  large volume 3x{shape} float32 = {gib(nbytes):.2f} GiB: generating")
        gen = write_voronoi(aff, shape, chunks)
        gens.append(dict(gen, shape=list(shape), input_bytes=nbytes))
        log(f"  generated in {gen['seconds']} s ({gen['stored_gib']} GiB stored)")
        for c in caches:
            res, ct = run_child(dict(what='connecto', aff=aff, out=str(wd / 'large-run.zarr'), workers=workers, block_shape=list(chunks),
                                     cache_gb=c), wd / 'tasks')
            runs.append(dict(res, shape=list(shape), input_bytes=nbytes)); conts.append(ct)
            log(f"  connecto workers={workers}, cache_size_gb={res['cache_size_gb']}: {res['seconds']:.1f} s, "
                f"peak tree RSS {gib(res['peak_tree_rss']):.2f} GiB (foreign load {ct.share:.0%})")
        rmtree(wd / 'large.zarr'); rmtree(wd / 'large-run.zarr')
    return dict(chunks=list(chunks), halo=HALO, workers=workers, generated=gens, runs=runs, load_note=load_note(conts))

def md_cell(r:dict, best:bool)->str:
    "One table cell: VOI split / merge / total (bold if best), ARAND, segments."
    b = '**' if best else ''
    return f"{r['voi_split']:.2f} / {r['voi_merge']:.2f} / {b}{r['voi']:.2f}{b}, {r['arand']:.3f}, {r['segments']}"

def md_quality(q:dict)->str:
    "One table per volume (rows: thresholds; columns: methods), then the best VOI per method."
    s = ''
    for name, v in q.items():
        if not VOLUMES[name]['table']: continue
        s += (f"\n**{name}** ({'x'.join(map(str, v['shape']))}, boundary map `{v['source']}`, ground truth `{v['gt']}`; "
              f"fragments: connecto {v['methods']['a'].get('fragments')}, waterz {v['waterz_fragments']}, "
              f"given `{v['given_fragments']}` {v['given_fragment_count']}). Cells: VOI split / merge / **total**, ARAND, segments.\n\n")
        s += '| t | ' + ' | '.join(f"({m.split('_')[0]}) {METHODS[m]}" for m in METHODS) + ' |\n' + '|---' * (len(METHODS) + 1) + '|\n'
        for t in v['methods']['a']['rows']:
            s += f"| {t} | " + ' | '.join(md_cell(v['methods'][m]['rows'][t], v['methods'][m]['best'] == t) for m in METHODS) + ' |\n'
    s += ('\nBest VOI per method: VOI (threshold), ARAND; "end" = the best threshold is the last of the sweep, so the optimum may '
          'lie beyond it.\n\n| method | ' + ' | '.join(q) + ' |\n|---|' + '---|' * len(q) + '\n')
    for m in METHODS:
        cells = []
        for n in q:
            mm = q[n]['methods'][m]; r = mm['rows'][mm['best']]
            end = ', end' if mm['best'] == list(mm['rows'])[-1] else ''
            cells.append(f"{r['voi']:.3f} ({mm['best']}{end}), {r['arand']:.3f}")
        s += f"| ({m.split('_')[0]}) {METHODS[m]} | " + ' | '.join(cells) + ' |\n'
    return s

def md_transfer(rows:list)->str:
    "Threshold-transfer table."
    s = ('\n**Threshold transfer** (best-VOI threshold of one volume used on the other):\n\n'
         '| method | tuned on -> applied to | t | VOI at t | best t there | best VOI | VOI lost |\n|---|---|---|---|---|---|---|\n')
    for r in rows:
        s += (f"| ({r['method'].split('_')[0]}) {METHODS[r['method']]} | {r['tuned_on']} -> {r['applied_to']} | {r['threshold']} | "
              f"{r['voi']:.3f} | {r['best_threshold']} | {r['best_voi']:.3f} | {r['loss']:+.3f} |\n")
    return s

def md_procs(r:dict)->str:
    "Peak RSS of the main process and of the largest other process of the tree, GiB."
    o = r.get('peak_others') or []
    return f"{gib(r['peak_main']):.2f}" + (f" / {gib(o[0]):.2f}" if o else '')

def md_speed(sp:dict)->str:
    "Speed table (medians, ratio to waterz, peak RSS) and where connecto's time goes."
    n = int(np.prod(sp['shape']))
    wz = median([r['seconds'] for r in sp['runs']['waterz']])
    wz_e2e = median([r['end_to_end_seconds'] for r in sp['runs']['waterz']])
    s = ('\n| run | times (s) | median (s) | Mvoxel/s | time / waterz | time / waterz end-to-end | peak tree RSS (GiB) | main / largest other process (GiB) | segments | VOI vs Voronoi labels |\n'
         '|---|---|---|---|---|---|---|---|---|---|\n')
    for name, rs in sp['runs'].items():
        ts = [r['seconds'] for r in rs]; m = median(ts)
        q = sp['quality_vs_voronoi'][name]
        s += (f"| {name} | {', '.join(f'{t:.1f}' for t in ts)} | {m:.1f} | {n / m / 1e6:.2f} | {m / wz:.1f}x | {m / wz_e2e:.1f}x | "
              f"{gib(max(r['peak_tree_rss'] for r in rs)):.2f} | {md_procs(max(rs, key=lambda r: r['peak_tree_rss']))} | {rs[-1]['segments']} | {q['voi']:.2f} ({q['voi_split']:.2f} / {q['voi_merge']:.2f}) |\n")
    we = sp['runs']['waterz']
    kl = [r['kernel_load_seconds'] for rs in sp['runs'].values() for r in rs if 'kernel_load_seconds' in r]
    if kl:
        t1 = median([r['seconds'] + r['kernel_load_seconds'] for r in sp['runs']['connecto t1']])
        s += (f"\n- numba's start and the fragment stage's compiled kernels (seeds, flood; cached on disk) are loaded once per process "
              f"before the timer, as waterz's compiled module is imported before its timer: median {median(kl):.2f} s (max {max(kl):.2f} s); "
              f"with it, one thread takes {t1:.1f} s = {t1 / wz:.1f}x waterz. The other stages' kernels (graph, merges, relabel) load "
              f"inside the timed run, and worker processes (w1, w2) load all of theirs inside it\n")
    s += (f"\n- waterz end-to-end (read affinities from Zarr + agglomerate + write segmentation to Zarr): median {wz_e2e:.1f} s "
          f"(read {median([r['read_seconds'] for r in we]):.1f} s, write {median([r['write_seconds'] for r in we]):.1f} s)\n")
    s += '- connecto time by stage (median over runs, s): \n\n| run | fragments | graph | merges (`merge_sequence`) | stitch | total |\n|---|---|---|---|---|---|\n'
    for name, rs in sp['runs'].items():
        if not name.startswith('connecto'): continue
        st = lambda k: median([r['stages'][k] for r in rs])
        s += (f"| {name} | {median([r['fragments_seconds'] for r in rs]):.1f} | {st('graph'):.1f} | {st('agglomerate'):.1f} | "
              f"{st('stitch'):.1f} | {median([r['seconds'] for r in rs]):.1f} |\n")
    c = sp['runs']['connecto w0'][-1]
    s += f"\n- connecto graph: {c['fragments']} fragments, {c['edges']} edges, {c['merges']} merges at t=0.5\n"
    p = sp.get('profile')
    if not p: return s + sp['load_note']
    s += (f"- the fragment step of all {p.get('blocks', 1)} blocks in turn ({p['voxels'] / 1e6:.1f} M voxels incl. halo, one thread; "
          f"{p['seeds']} seeds, of which {p['small']} end up below min_size): "
          + ', '.join(f"{k} {v:.2f} s" for k, v in p.items() if isinstance(v, float) and k != 'first_read')
          + (f" (of the read, {p['first_read']:.2f} s is the first block's, which decodes every chunk its context touches)"
             if 'first_read' in p else '') + '\n')
    return s + sp['load_note']

def md_large(lg:dict)->str:
    "Large-volume table: one row per volume size and chunk-cache size."
    s = (f"\nGenerated Voronoi affinities, float32 (3, z, y, x), written chunk by chunk to Zarr (chunks {'x'.join(map(str, lg['chunks']))}, "
         "zstd-3): " + '; '.join(f"3x{'x'.join(map(str, g['shape']))} = **{gib(g['input_bytes']):.2f} GiB** ({g['cells']} cells, "
                                 f"{g['stored_gib']:.2f} GiB on disk, generated in {g['seconds']:.0f} s)" for g in lg['generated']) +
         f". `fragments(kind='affinities', block_shape={tuple(lg['chunks'])})` + `agglomerate(thresholds=[0.5])` on one "
         f"`shared_cluster(workers={lg['workers']})`, in a subprocess; RSS of its whole tree summed every 0.1 s (per-process peaks: "
         "VmHWM, exact). `cache_size_gb` is the config's decoded-chunk cache per process (default 1.0).\n\n"
         "| input (GiB) | cache_size_gb | wall (s) | Mvoxel/s | fragments (s) | graph (s) | merges (s) | stitch (s) | fragments | edges "
         "| segments | peak tree RSS (GiB) | main / largest other process (GiB) | input / peak RSS |\n" + '|---' * 14 + '|\n')
    for r in lg['runs']:
        st, n = r['stages'], int(np.prod(r['shape']))
        s += (f"| {gib(r['input_bytes']):.2f} | {r['cache_size_gb']:g} | {r['seconds']:.0f} | {n / r['seconds'] / 1e6:.2f} | "
              f"{r['fragments_seconds']:.0f} | {st['graph']:.0f} | {st['agglomerate']:.0f} | {st['stitch']:.0f} | {r['fragments']} | "
              f"{r['edges']} | {r['segments']} | **{gib(r['peak_tree_rss']):.2f}** (anon {gib(r['peak_tree_anon']):.2f}, "
              f"{r['peak_procs']} processes) | {md_procs(r)} | {r['input_bytes'] / r['peak_tree_rss']:.1f}x |\n")
    return s + '\n' + lg['load_note']

def findings_quality(q:dict, tr:list)->list:
    "Summary lines for the quality part, from the numbers."
    names = [n for n in q if VOLUMES[n]['table']]
    best = lambda n, m: q[n]['methods'][m]['rows'][q[n]['methods'][m]['best']]['voi']
    same = max(abs(q[n]['methods']['c_connecto']['rows'][t]['voi'] - q[n]['methods']['c_waterz']['rows'][t]['voi'])
               for n in names for t in q[n]['methods']['c_waterz']['rows'])
    out = ["**Same fragments, same result**: on the given fragments the two agglomerators agree to within "
           f"{same:.3f} bits of VOI at every threshold on both volumes (connecto quantizes affinities to 255 levels)",
           "**Own fragments**: best VOI connecto " + ', '.join(f"{best(n, 'a'):.3f}" for n in names) + " vs waterz "
           + ', '.join(f"{best(n, 'b'):.3f}" for n in names) + f" ({', '.join(names)}); the difference is the fragments "
           "(connecto: minima seeds + min_size 20; waterz: zwatershed, many more fragments)"]
    ends = [n for n in names if any(q[n]['methods'][m]['best'] == list(q[n]['methods'][m]['rows'])[-1] for m in METHODS)]
    if ends: out.append(f"on {', '.join(ends)} the best threshold is the last of the sweep (VOI still falling): the optimum lies higher")
    out.append("**Thresholds do not transfer** between these volumes: VOI lost " + ', '.join(
        f"{r['loss']:+.2f} ({r['method'].split('_')[0]}{'-' + r['method'].split('_')[1] if '_' in r['method'] else ''}, "
        f"{r['tuned_on']} -> {r['applied_to']})" for r in tr if r['method'] in ('a', 'b')))
    for n in q:
        m = q[n]['stored_map']
        if m['elsewhere'] > m['on_faces']:
            out.append(f"`{VOLUMES[n]['src']}` is **not a boundary map**: mean {m['on_faces']} on the faces between ground-truth "
                       f"labels vs {m['elsewhere']} elsewhere, {m['above_half'] * 100:.0f}% of voxels above 0.5 (high inside cells). "
                       "It is inverted for the tables; 'map as stored' shows the result of using it as boundaries")
            break
    return out

def findings_speed(sp:dict)->list:
    "Summary lines for the speed part."
    med = {k: median([r['seconds'] for r in rs]) for k, rs in sp['runs'].items()}
    cs = {k: v for k, v in med.items() if k.startswith('connecto')}
    fast = min(cs, key=cs.get)
    frag = median([r['fragments_seconds'] for r in sp['runs'][fast]])
    p = sp['profile']
    steps = {k: v for k, v in p.items() if isinstance(v, float) and not k.startswith('numba') and k != 'first_read'}
    n = int(np.prod(sp['shape']))
    ratio = cs[fast] / med['waterz']
    return [f"**connecto takes {ratio:.1f}x waterz's time** on {'x'.join(map(str, sp['shape']))} ({'slower' if ratio > 1 else 'faster'}): "
            f"best connecto run ({fast}) {cs[fast]:.1f} s vs waterz {med['waterz']:.1f} s ({n / cs[fast] / 1e6:.2f} vs "
            f"{n / med['waterz'] / 1e6:.1f} Mvoxel/s); single-threaded: {med['connecto t1'] / med['waterz']:.1f}x in the process "
            f"(one thread), {med['connecto w1'] / med['waterz']:.1f}x in one worker process",
            f"where the time goes ({fast}): fragments {frag:.1f} s, graph + merges + stitch {cs[fast] - frag:.1f} s; the "
            f"fragment step of all {p.get('blocks', 1)} blocks on one thread ({p['voxels'] / 1e6:.1f} M voxels incl. halo): " +
            ', '.join(f"{k} {v / sum(steps.values()) * 100:.0f}%" for k, v in steps.items()),
            f"1 thread {med['connecto t1']:.1f} s, 2 threads (workers=0) {med['connecto w0']:.1f} s, 1 worker process {med['connecto w1']:.1f} s, 2 worker processes "
            f"{med['connecto w2']:.1f} s (processes pay a start of a few seconds: worth it on volumes of many blocks, not on 4)"]

def findings_scale(sp:dict)->list:
    "Summary line for the speed runs at scale."
    med = {k: median([r['seconds'] for r in rs]) for k, rs in sp['runs'].items()}
    e2e = median([r['end_to_end_seconds'] for r in sp['runs']['waterz']])
    n, w = int(np.prod(sp['shape'])), med['waterz']
    runs = {'connecto t1': 'one thread', 'connecto w0': 'two threads', 'connecto w1': 'one worker process', 'connecto w2': 'two worker processes'}
    return [f"**At scale** ({'x'.join(map(str, sp['shape']))}, {gib(3 * n * 4):.2f} GiB of affinities, waterz {w:.1f} s in memory, "
            f"{e2e:.1f} s with its Zarr read and write): " + ', '.join(
                f"{label} {med[k]:.1f} s = **{med[k] / w:.2f}x** waterz's time ({med[k] / e2e:.2f}x end-to-end)" for k, label in runs.items() if k in med)]

def findings_large(lg:dict)->list:
    "Summary lines for the large part: peaks per size, and whether they grow with the volume."
    out = [f"{gib(r['input_bytes']):.2f} GiB input, cache_size_gb={r['cache_size_gb']:g}: peak RSS {gib(r['peak_tree_rss']):.2f} GiB "
           f"= {r['peak_tree_rss'] / r['input_bytes']:.2f}x the input; largest worker {gib(r['peak_others'][0]):.2f} GiB, main "
           f"process {gib(r['peak_main']):.2f} GiB" for r in lg['runs']]
    by_cache = {}
    for r in lg['runs']: by_cache.setdefault(r['cache_size_gb'], []).append(r)
    for c, rs in by_cache.items():
        if len(rs) > 1:
            a, b = rs[0], rs[-1]
            out.append(f"**bounded**: at cache_size_gb={c:g}, {b['input_bytes'] / a['input_bytes']:.1f}x the volume "
                       f"({gib(a['input_bytes']):.2f} -> {gib(b['input_bytes']):.2f} GiB) changes the peak RSS "
                       f"{gib(a['peak_tree_rss']):.2f} -> {gib(b['peak_tree_rss']):.2f} GiB ({b['peak_tree_rss'] / a['peak_tree_rss']:.2f}x)")
    h, bs = lg.get('halo', 16), lg['chunks']
    out.append(f"per worker: one block's context (up to {'x'.join(str(b + 2 * h) for b in bs)} voxels, 3 float32 channels) and its flood, "
               "plus up to cache_size_gb of decoded chunks; the main process holds the region graph (edges, not voxels)")
    return out

def md_findings(res:dict)->str:
    "The findings, as a bullet list."
    lines = []
    if 'quality' in res: lines += findings_quality(res['quality'], res['transfer'])
    if 'speed' in res: lines += findings_speed(res['speed'])
    if 'scale' in res: lines += findings_scale(res['scale'])
    if 'large' in res: lines += findings_large(res['large'])
    return '\n### Findings\n\n' + ''.join(f"- {l}\n" for l in lines)

def markdown(res:dict)->str:
    "The whole Markdown section."
    v = res['versions']
    s = (f"<!-- BEGIN segment_vs_waterz -->\n## 4. Segmentation: connecto vs waterz\n\n- date: {res['date']}\n- machine: {res['machine']}\n"
         f"- versions: " + ', '.join(f"{k} {x}" for k, x in v.items()) + f"\n- command: `{res['command']}`\n")
    if res.get('merged'):
        m = res['merged']
        s += f"- kept from the run of {m['date']} (`{m['command']}`): {', '.join(m['parts'])}\n"
    s += md_findings(res)
    if 'quality' in res:
        s += ("\n### Quality: threshold sweep\n\nconnecto: `fragments(kind='boundaries')` (defaults: minima seeds, threshold 0.5, "
              "min_size 20) + `agglomerate(thresholds=0.1..0.9)` (score 1 - mean affinity, affinities quantized to 255 levels). "
              "waterz 'OneMinus<MeanAffinity>' (default) on float32 affinities built from the same boundary map "
              "(a_d(p) = 1 - (b(p) + b(p - e_d)) / 2, connecto's convention). (c) gives both the same fragments. "
              "VOI in bits (split = false splits, merge = false merges), ground-truth label 0 ignored; bold = best VOI of the column.\n")
        s += md_quality(res['quality']) + md_transfer(res['transfer'])
    if 'speed' in res:
        sp = res['speed']
        s += (f"\n### Speed: {'x'.join(map(str, sp['shape']))} generated volume\n\nVoronoi cells ({sp['generate']['cells']} seed points), "
              "faces plus uniform per-voxel noise, blurred together (sigma 1), stored as float32 affinities (3, z, y, x) in Zarr (chunks "
              f"{'x'.join(map(str, sp['chunks']))}). Each run in a fresh subprocess; times after imports (connecto: also of the libraries its stages import lazily: distributed, numba, cc3d, fastremap; numba's start and the loading of connecto's compiled kernels are timed apart, below). "
              f"connecto: `fragments(kind='affinities', block_shape={tuple(sp['chunks'])}, halo={sp.get('halo', 16)})` + `agglomerate(thresholds=[0.5])`, "
              "reading and writing Zarr, both inside one `shared_cluster(workers)`: workers=0 = threads in the process (2; t1: one thread), "
              "workers=1/2 = LocalCluster processes, started once for the three stages (fragments, graph, stitch). waterz: `agglomerate(affs, [0.5])` "
              "(its zwatershed + agglomeration, single-threaded), affinities already in memory; the end-to-end column adds its Zarr "
              f"read and write. Medians of {len(sp['runs']['waterz'])} runs. Peak tree RSS = largest sum over the process tree, "
              "sampled every 0.1 s; per-process peaks = VmHWM (exact).\n")
        s += md_speed(sp)
    if 'scale' in res:
        sp = res['scale']
        s += (f"\n### Speed at scale: {'x'.join(map(str, sp['shape']))} generated volume\n\nThe same kind of volume ({sp['generate']['cells']} "
              f"cells, {int(np.prod(sp['shape'])) // int(np.prod(sp['chunks']))} blocks) and the same runs as above, {len(sp['runs']['waterz'])} "
              "each, alternating: here the blocks' halo and the processes' start weigh less than on 4 blocks. waterz again on the whole "
              "volume in memory.\n")
        s += md_speed(sp)
    if 'large' in res:
        s += '\n### Out of core: >= 2 GiB of affinities\n' + md_large(res['large'])
    return s + '<!-- END segment_vs_waterz -->\n'

# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--parts', default='quality,speed,scale,large', help='comma-separated: quality, speed, scale, large')
    ap.add_argument('--speed-shape', type=triple, default=(64, 512, 512))
    ap.add_argument('--scale-shape', type=triple, default=(128, 1024, 768), help='volume of the speed runs at scale')
    ap.add_argument('--scale-reps', type=int, default=3, help='runs of each configuration at scale')
    ap.add_argument('--merge', metavar='FILE', help='an earlier results file: its parts that this run does not repeat are kept')
    ap.add_argument('--large-shapes', type=lambda v: [triple(t) for t in v.split(';')], default=[(128, 1024, 768), (256, 1024, 768)],
                    help='semicolon-separated volume shapes z,y,x (the last >= 2 GiB): same peak RSS for each = bounded')
    ap.add_argument('--block-shape', type=triple, default=(64, 256, 256), help='connecto blocks = Zarr chunks (speed and large)')
    ap.add_argument('--thresholds', type=lambda s: [float(t) for t in s.split(',')], default=THRESHOLDS,
                    help='quality sweep, comma-separated (default 0.1,...,0.9)')
    ap.add_argument('--reps', type=int, default=3, help='runs of each speed configuration')
    ap.add_argument('--large-workers', type=int, default=2)
    ap.add_argument('--large-cache-gb', default='default,0.25',
                    help="comma-separated cache_size_gb values, one large run each ('default' = the default config)")
    ap.add_argument('--workdir', default='/tmp/connecto-bench/segment')
    ap.add_argument('--json', default=str(JSON_OUT))
    ap.add_argument('--from-json', metavar='FILE', help='only print the Markdown of a results file written before')
    ap.add_argument('--child', help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child: return child(a.child)
    if a.from_json: return print(markdown(json.loads(Path(a.from_json).read_text())))
    logging.getLogger('distributed').setLevel(logging.ERROR)
    wd = Path(a.workdir); rmtree(wd); wd.mkdir(parents=True)
    parts = a.parts.split(',')
    res = dict(date=utc_date(), machine=machine(), versions=versions(),
               command='python ' + ' '.join([os.path.relpath(sys.argv[0], HERE.parent)] + sys.argv[1:]))
    if 'quality' in parts:
        log('quality sweep')
        res['quality'] = {n: quality_volume(n, wd / 'quality' / str(i), a.thresholds) for i, n in enumerate(VOLUMES)}
        res['transfer'] = transfer(res['quality'])
    if 'speed' in parts:
        log('speed'); res['speed'] = speed(wd / 'speed', a.speed_shape, a.block_shape, a.reps)
    if 'scale' in parts:
        log('scale'); res['scale'] = speed(wd / 'scale', a.scale_shape, a.block_shape, a.scale_reps,
                                           names=('waterz', 'connecto t1', 'connecto w0', 'connecto w2'), profile=False)
    if 'large' in parts:
        log('large'); res['large'] = large(wd / 'large', a.large_shapes, a.block_shape, a.large_workers,
                                                   [None if c == 'default' else float(c) for c in a.large_cache_gb.split(',')])
    if a.merge:
        old = json.loads(Path(a.merge).read_text())
        kept = [p for p in ('quality', 'transfer', 'speed', 'scale', 'large') if p in old and p not in res]
        res.update({p: old[p] for p in kept}); res['merged'] = dict(parts=kept, date=old.get('date'), command=old.get('command'))
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    log(f"wrote {a.json}")
    print(markdown(res))
    rmtree(wd)

if __name__ == '__main__':
    main()
