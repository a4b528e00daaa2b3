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
