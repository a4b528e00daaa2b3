"Ingest of the real sample data through the CLI, read back identical; bad inputs get exit 2 and change nothing."
import json
import numpy as np
import pytest
import tifffile, zarr
from connecto.volume import Volume, from_array
from conftest import connecto, tree_digest

@pytest.mark.parametrize('src,block', [
    ('fibsem-gala/train-image.h5:stack', '25,50,100'),      # HDF5
    ('fibsem-gala/train-gt.lzf.h5:stack', '25,64,64'),      # HDF5 with lzf, int32 labels
    ('snemi-mini/train-fragments.tif', '16,80,80'),         # multi-page TIFF, uint16
    ('isbi2012/train/image/', '8,256,256'),                 # folder of PNG sections
])
def test_ingest_reads_back_identical(data, tmp_path, src, block):
    dst = tmp_path/'out.zarr/vol'
    res = connecto('ingest', f'{data}/{src}', dst, '--block-shape', block, '--json', '--quiet')
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s['blocks_done'] == s['blocks_total'] > 1 and s['blocks_failed'] == 0 and s['blocks_skipped'] == 0
    assert np.array_equal(Volume(dst)[...], Volume(f'{data}/{src}')[...])
    again = json.loads(connecto('ingest', f'{data}/{src}', dst, '--block-shape', block, '--json', '--quiet').stdout)
    assert again['blocks_skipped'] == s['blocks_total'] and again['blocks_done'] == 0

def test_ingest_tiff_matches_tifffile(data, tmp_path):
    res = connecto('ingest', f'{data}/snemi-mini/train-labels.tif', tmp_path/'s.zarr/labels', '--voxel-size', '30,6,6', '--quiet')
    assert res.returncode == 0, res.stderr
    v = Volume(tmp_path/'s.zarr/labels')
    assert np.array_equal(v[...], tifffile.imread(data/'snemi-mini/train-labels.tif'))
    assert v.voxel_size == (30., 6., 6.)
    ome = zarr.open_group(str(tmp_path/'s.zarr/labels'), mode='r').attrs['ome']
    assert ome['multiscales'][0]['datasets'][0]['coordinateTransformations'][0]['scale'] == [30., 6., 6.]

@pytest.fixture
def existing(tmp_path, data):
    "An output that a bad command must leave untouched."
    dst = tmp_path/'keep.zarr/raw'
    assert connecto('ingest', f'{data}/snemi-mini/train-labels.tif', dst, '--quiet').returncode == 0
    return dst, tree_digest(dst)

def corrupt_zarr(tmp_path):
    "A Zarr volume with one chunk cut short."
    v = from_array(np.arange(8 * 16 * 16, dtype=np.uint16).reshape(8, 16, 16), str(tmp_path/'bad.zarr/raw'), chunks=(4, 8, 8))
    chunk = tmp_path/'bad.zarr/raw/s0/c/1/0/1'
    chunk.write_bytes(chunk.read_bytes()[:7])
    return str(tmp_path/'bad.zarr/raw')

BAD = {
    'missing file': (lambda d, t: [t/'nope.h5:stack'], 'no such file'),
    'wrong dataset': (lambda d, t: [f'{d}/fibsem-gala/train-image.h5:labels'], "no dataset 'labels'"),
    'unsupported dtype': (lambda d, t: [np.save(t/'c.npy', np.zeros((2, 4, 4), np.complex64)) or t/'c.npy'], 'dtype complex64'),
    'bad config key': (lambda d, t: [f'{d}/snemi-mini/train-labels.tif', '--config',
                                     (t/'c.yaml').write_text('chunk_sise: [8, 8, 8]') and t/'c.yaml'], "did you mean 'chunk_size'"),
    'bad config value': (lambda d, t: [f'{d}/snemi-mini/train-labels.tif', '--config',
                                       (t/'c.yaml').write_text('chunk_size: [1, 2]') and t/'c.yaml'], "'chunk_size'"),
    'bad block shape': (lambda d, t: [f'{d}/snemi-mini/train-labels.tif', '--block-shape', '8,0,8'], '--block-shape must be three positive integers'),
    'other parameters': (lambda d, t: [f'{d}/snemi-mini/train-labels.tif', '--block-shape', '8,32,32'], '--overwrite'),
}

@pytest.mark.parametrize('case', list(BAD))
def test_bad_input_exit_2_nothing_written_over(data, tmp_path, existing, case):
    make, message = BAD[case]
    args = make(data, tmp_path)
    src, extra = args[0], args[1:]
    dst, before = existing
    res = connecto('ingest', src, dst, *extra, '--quiet', '--json')
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in res.stderr, res.stderr
    assert message in lines[0], lines[0]
    assert tree_digest(dst) == before

def test_corrupt_chunk_into_new_output_exit_2(tmp_path):
    res = connecto('ingest', corrupt_zarr(tmp_path), tmp_path/'new.zarr/raw', '--block-shape', '4,8,8', '--quiet')
    assert res.returncode == 2 and 'corrupt chunk c/1/0/1' in res.stderr and len(res.stderr.strip().splitlines()) == 1

def test_fsspec_url_volumes_ledger_and_lease_lock(data):
    "Volumes, ledger and lock on an fsspec store (memory://, in-process threads): the object-store code path."
    from connecto.state import OutputBusy, OutputLock
    from connecto.ingest import ingest
    src = f'{data}/snemi-mini/train-labels.tif'
    r = ingest(src, 'memory://fs-test.zarr/labels', block_shape=(16, 80, 80), progress=False)
    assert r.blocks_done == 8 and np.array_equal(Volume('memory://fs-test.zarr/labels')[...], Volume(src)[...])
    assert ingest(src, 'memory://fs-test.zarr/labels', block_shape=(16, 80, 80), progress=False).blocks_skipped == 8
    with OutputLock('memory://fs-test.zarr/labels'):
        with pytest.raises(OutputBusy): OutputLock('memory://fs-test.zarr/labels').acquire()
