"Regression tests for defects found in review of the foundation."
import numpy as np, pytest
from distributed import Client, LocalCluster
from connecto.config import Config, InputError
from connecto.volume import Volume, from_array, spec_kind
from conftest import connecto

def test_runs_in_one_process_never_reuse_stale_volumes(data, tmp_path):
    "A second run in the same process re-opens its volumes: an overwrite with another codec stays readable."
    from connecto.ingest import ingest
    src, dst = f'{data}/snemi-mini/train-labels.tif', str(tmp_path/'o.zarr/v')
    ingest(src, dst, config=Config(compression='zstd'), progress=False)
    ingest(src, dst, config=Config(compression='gzip'), overwrite=True, progress=False)
    assert np.array_equal(Volume(dst)[...], Volume(src)[...])

def test_transient_read_error_is_not_called_corrupt(tmp_path):
    v = Volume(from_array(np.ones((4, 8, 8), np.uint8), str(tmp_path/'t.zarr/v'), chunks=(2, 4, 4)).spec)
    v._r.use_ts, real = False, v._r._a
    class Flaky:
        calls = 0
        def __getattr__(self, k): return getattr(real, k)
        def __getitem__(self, sl):
            Flaky.calls += 1
            if Flaky.calls == 1: raise TimeoutError('network hiccup')
            return real[sl]
    v._r._a = Flaky()
    with pytest.raises(TimeoutError): v[...]          # retryable by the engine, not an InputError
    assert v[...].sum() == 4 * 8 * 8

def test_engine_with_a_client_that_is_not_the_default(tmp_path):
    from connecto.blocks import BlockGrid
    from connecto.engine import Task, run_blockwise
    from connecto.ingest import copy_block
    src = Volume(from_array(np.arange(4 * 8 * 8, dtype=np.uint16).reshape(4, 8, 8), str(tmp_path/'a.zarr/v'), chunks=(2, 4, 4)).spec)
    dst = from_array(np.zeros((4, 8, 8), np.uint16), str(tmp_path/'b.zarr/v'), chunks=(2, 4, 4))
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, Client(cluster, set_as_default=False) as c:
        r = run_blockwise(Task('copy', BlockGrid(src.shape, (2, 4, 4)), dst.spec, copy_block, dict(src=src, dst=dst)), client=c, progress=False)
    assert r.blocks_done == 8 and np.array_equal(Volume(dst.spec)[...], src[...])

def test_debug_keeps_exit_code_2(tmp_path):
    res = connecto('ingest', tmp_path/'nope.h5:stack', tmp_path/'o.zarr/v', '--debug')
    assert res.returncode == 2 and 'Traceback' in res.stderr and 'no such file' in res.stderr.strip().splitlines()[-1]

def test_zarr_suffix_must_be_a_path_component():
    assert spec_kind('/data/run.zarr_exports/raw.h5:stack')[0] == 'hdf5'
    assert spec_kind('/data/x.zarrs/stack.tif')[0] == 'tiff'
    assert spec_kind('/data/x.zarr/raw')[0] == 'zarr' and spec_kind('/data/x.zarr')[0] == 'zarr'

def test_remote_lease_is_renewed_and_not_stolen():
    "On an object store the lease is renewed while the run holds it; an expired lease can be taken, and the old holder notices."
    import time
    from connecto.state import OutputBusy, OutputLock
    a = OutputLock('memory://lease.zarr/v', lease_seconds=0.3).acquire()
    time.sleep(0.15); a.renew()
    with pytest.raises(OutputBusy): OutputLock('memory://lease.zarr/v', lease_seconds=0.3).acquire()
    time.sleep(0.4)
    b = OutputLock('memory://lease.zarr/v', lease_seconds=0.3).acquire()     # a stopped renewing: b may take over
    with pytest.raises(OutputBusy, match='taken over'): a.renew()
    a.release()                                                            # does not remove b's lock
    with pytest.raises(OutputBusy): OutputLock('memory://lease.zarr/v', lease_seconds=0.3).acquire()
    b.release()
    OutputLock('memory://lease.zarr/v').acquire().release()

def test_lease_of_a_dead_run_is_taken_over():
    "A holder that died (lease no longer renewed) blocks only until its lease runs out; on the same machine, not at all."
    import json, socket, time, fsspec
    from connecto.state import OutputBusy, OutputLock
    fs, path = fsspec.filesystem('memory'), '/dead.zarr/v/.connecto/lock'
    dead = {'pid': 2**22 + 12345, 'host': socket.gethostname(), 'time': time.time(), 'token': 'x'}    # above any pid_max
    fs.pipe(path, json.dumps(dead).encode())
    OutputLock('memory://dead.zarr/v', lease_seconds=60).acquire().release()     # same machine, process gone: at once
    fs.pipe(path, json.dumps({**dead, 'host': 'pod-elsewhere', 'time': time.time() - 0.6}).encode())
    t = time.perf_counter(); OutputLock('memory://dead.zarr/v', lease_seconds=1).acquire().release()
    assert 0.3 < time.perf_counter() - t < 1.0                                  # waited for the rest of its lease
    fs.pipe(path, json.dumps({**dead, 'host': 'pod-elsewhere', 'time': time.time()}).encode())
    with pytest.raises(OutputBusy): OutputLock('memory://dead.zarr/v', lease_seconds=1).acquire()   # renewed just now: alive

def test_slice_folder_with_a_bad_section_is_refused_before_overwrite(data, tmp_path):
    "A section of another shape (or an unreadable one) is found when the folder is opened, so --overwrite destroys nothing."
    import shutil
    from PIL import Image
    from conftest import tree_digest
    folder = tmp_path/'sections'; shutil.copytree(data/'isbi2012/train/image', folder)
    dst = tmp_path/'o.zarr/raw'
    assert connecto('ingest', f'{folder}/', dst, '--block-shape', '8,256,256', '--quiet').returncode == 0
    before = tree_digest(dst)
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(folder/'23.png')
    res = connecto('ingest', f'{folder}/', dst, '--block-shape', '4,256,256', '--overwrite', '--quiet')
    assert res.returncode == 2 and 'all sections must match' in res.stderr and tree_digest(dst) == before
    (folder/'23.png').write_bytes(b'not a png')
    res = connecto('ingest', f'{folder}/', dst, '--block-shape', '4,256,256', '--overwrite', '--quiet')
    assert res.returncode == 2 and 'not a readable image' in res.stderr and tree_digest(dst) == before
