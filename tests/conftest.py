"Shared fixtures of connecto's integration tests: real data, the CLI in a subprocess, generated volumes."
import hashlib, json, os, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent/'shared'/'data'

def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long tests, run with -m slow')

@pytest.fixture(scope='session')
def data():
    "The real EM crops in ../shared/data."
    assert DATA.is_dir(), f'{DATA} is missing: the tests read the real sample data from ../shared/data'
    return DATA

def connecto(*args, timeout=600, **kw):
    "Run the `connecto` CLI in a subprocess; returns the CompletedProcess (text mode)."
    return subprocess.run([sys.executable, '-m', 'connecto.cli', *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)

def tree_digest(path, exclude='.connecto'):
    "{relative file path: sha256} of every file under `path` except the engine's state folder."
    path = Path(path)
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob('*')) if p.is_file() and exclude not in p.parts}

@pytest.fixture(scope='session')
def big_npy(tmp_path_factory):
    "A 256 x 1024 x 1024 uint8 .npy of noise (256 MiB): slow enough to kill a run in the middle."
    p = tmp_path_factory.mktemp('big')/'noise.npy'
    a = np.lib.format.open_memmap(p, mode='w+', dtype=np.uint8, shape=(256, 1024, 1024))
    rng = np.random.default_rng(0)
    for z in range(0, 256, 32): a[z:z + 32] = rng.integers(0, 256, (32, 1024, 1024), dtype=np.uint8)
    a.flush(); del a
    return p

def voronoi_volume(shape=(48, 192, 192), n_cells=60, seed=0):
    "Ground truth (Voronoi cells, uint32) and a noisy boundary map (float32, 1 = boundary) of a generated volume."
    import scipy.ndimage as ndi
    from scipy.spatial import cKDTree
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 1, (n_cells, 3)) * shape
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing='ij'), -1).reshape(-1, 3)
    gt = (cKDTree(pts).query(grid)[1] + 1).astype(np.uint32).reshape(shape)
    edge = np.zeros(shape, bool)
    for d in range(3):
        diff = np.diff(gt, axis=d) != 0
        lo = [slice(None)] * 3; lo[d] = slice(1, None)
        edge[tuple(lo)] |= diff
    b = ndi.gaussian_filter(edge.astype(np.float32), 1.0) * 2.5 + rng.normal(0, 0.05, shape).astype(np.float32)
    return gt, np.clip(b, 0, 1).astype(np.float32)

@pytest.fixture(scope='session')
def voronoi(tmp_path_factory):
    "A generated 48 x 192 x 192 volume: (ground truth .npy path, boundary map .npy path)."
    d = tmp_path_factory.mktemp('voronoi')
    gt, b = voronoi_volume()
    np.save(d/'gt.npy', gt); np.save(d/'boundaries.npy', b)
    return d/'gt.npy', d/'boundaries.npy'
