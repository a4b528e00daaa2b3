"Segmentation through the CLI on real data: boundaries -> fragments -> agglomerate -> evaluate, block-shape independence, kill -9 and resume, metrics against scikit-image, bad inputs."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest
from conftest import connecto, tree_digest
from connecto.volume import Volume
from connecto.evaluate import voi

def ok(res):
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)

def segment(data, tmp, boundaries, block_shape, thresholds='0.5', workers=None):
    "fragments + agglomerate through the CLI; returns the agglomerate summary."
    extra = ['--workers', str(workers)] if workers else []
    ok(connecto('fragments', '--boundaries', boundaries, '--out', tmp/'s.zarr/fragments', '--block-shape', block_shape, '--json', '--quiet', *extra))
    return ok(connecto('agglomerate', '--fragments', tmp/'s.zarr/fragments', '--boundaries', boundaries, '--out', tmp/'s.zarr/seg',
                       '--thresholds' if ',' in thresholds else '--threshold', thresholds, '--block-shape', block_shape, '--json',
                       '--quiet', *extra))

def test_snemi_end_to_end(data, tmp_path):
    "Real SNEMI3D crop: agglomeration improves on its fragments, and the numbers match scikit-image."
    from skimage.metrics import variation_of_information, adapted_rand_error
    probs, labels = data/'snemi-mini/train-probabilities.tif', data/'snemi-mini/train-labels.tif'
    s = segment(data, tmp_path, probs, '16,80,80', '0.3,0.5,0.7')
    assert [o['threshold'] for o in s['outputs']] == [0.3, 0.5, 0.7] and s['edges'] > s['fragments'] > 100
    frag = ok(connecto('evaluate', '--seg', tmp_path/'s.zarr/fragments', '--gt', labels, '--json', '--quiet'))
    segs = [ok(connecto('evaluate', '--seg', o['out'], '--gt', labels, '--json', '--quiet')) for o in s['outputs']]
    assert min(m['voi'] for m in segs) < frag['voi'] and min(m['arand'] for m in segs) < frag['arand']
    assert segs[0]['voi_split'] > segs[-1]['voi_split'] and segs[0]['voi_merge'] < segs[-1]['voi_merge']
    gt, seg = Volume(labels)[...], Volume(s['outputs'][1]['out'])[...]
    sk_split, sk_merge = variation_of_information(gt, seg, ignore_labels=[0])
    assert segs[1]['voi_split'] == pytest.approx(sk_split, abs=1e-6) and segs[1]['voi_merge'] == pytest.approx(sk_merge, abs=1e-6)
    assert segs[1]['arand'] == pytest.approx(adapted_rand_error(gt, seg, ignore_labels=[0])[0], abs=1e-6)

def test_given_fragments_block_shape_independent(data, tmp_path):
    "Graph, agglomeration and stitching are exact: the gala fragments agglomerated in two block layouts (one on a 2-process cluster) agree voxel for voxel."
    ws, p1 = f"{data}/fibsem-gala/train-ws.lzf.h5:stack", f"{data}/fibsem-gala/train-p1.lzf.h5:stack"
    a = ok(connecto('agglomerate', '--fragments', ws, '--boundaries', p1, '--out', tmp_path/'a.zarr/seg', '--threshold', '0.5',
                    '--block-shape', '25,50,100', '--json', '--quiet'))
    b = ok(connecto('agglomerate', '--fragments', ws, '--boundaries', p1, '--out', tmp_path/'b.zarr/seg', '--threshold', '0.5',
                    '--block-shape', '16,32,64', '--workers', '2', '--json', '--quiet'))
    assert a['merges'] == b['merges'] > 0
    A, B = Volume(tmp_path/'a.zarr/seg')[...], Volume(tmp_path/'b.zarr/seg')[...]
    assert np.array_equal(A, B) and voi(A, B, ignore_zero=False)['voi'] == 0

def test_end_to_end_block_shape_bounded(data, tmp_path):
    "Fragments depend on the block layout near block faces (the one approximation); after agglomeration the difference is bounded."
    p1, gt = f"{data}/fibsem-gala/train-p1.lzf.h5:stack", Volume(f"{data}/fibsem-gala/train-gt.lzf.h5:stack")[...]
    segs = []
    for i, bs in enumerate(['25,50,100', '50,100,200']):
        segment(data, tmp_path/str(i), p1, bs, '0.7')
        segs.append(Volume(tmp_path/str(i)/'s.zarr/seg')[...])
    between = voi(segs[0], segs[1], ignore_zero=False)['voi']
    to_gt = [voi(s, gt)['voi'] for s in segs]
    assert between < 0.1 and between < 0.25 * min(to_gt), (between, to_gt)

def start(args):
    return subprocess.Popen([sys.executable, '-m', 'connecto.cli', *map(str, args), '--quiet', '--json'], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)

def kill_after_ledger(p, out, n=2, timeout=120):
    t = time.time()
    while time.time() - t < timeout and p.poll() is None:
        if len(list(Path(out).glob('.connecto/ledger-*/*.u64'))) >= n:
            os.killpg(p.pid, signal.SIGKILL); p.wait(); return
        time.sleep(0.02)
    raise AssertionError(f'the run ended or wrote no ledger segments: {p.poll()} {p.stderr.read() if p.poll() is not None else ""}')

@pytest.mark.parametrize('stage', ['fragments', 'agglomerate'])
def test_kill_then_resume_identical(voronoi, tmp_path, stage):
    "kill -9 in the middle of a stage, re-run: finished blocks are skipped and the result equals an uninterrupted run, file for file."
    gt, b = voronoi
    cfg = tmp_path/'c.yaml'; cfg.write_text('checkpoint_interval: 1\n')
    frag_args = lambda out: ['fragments', '--boundaries', b, '--out', out, '--block-shape', '16,48,48', '--config', cfg]
    agg_args = lambda frags, out: ['agglomerate', '--fragments', frags, '--boundaries', b, '--out', out, '--threshold', '0.5',
                                   '--block-shape', '16,48,48', '--config', cfg]
    ok(connecto(*frag_args(tmp_path/'ref.zarr/f'), '--quiet', '--json'))
    ok(connecto(*agg_args(tmp_path/'ref.zarr/f', tmp_path/'ref.zarr/s'), '--quiet', '--json'))
    frags = tmp_path/'run.zarr/f'
    if stage == 'agglomerate': ok(connecto(*frag_args(frags), '--quiet', '--json'))
    args, out = (frag_args(frags), frags) if stage == 'fragments' else (agg_args(frags, tmp_path/'run.zarr/s'), tmp_path/'run.zarr/s')
    kill_after_ledger(start(args), out, n=3)
    assert not list(Path(out).glob('.connecto/ledger-*/complete.json'))
    s = ok(connecto(*args, '--quiet', '--json'))
    if stage == 'fragments':
        assert s['blocks_skipped'] > 0 and s['blocks_done'] > 0
        assert tree_digest(frags) == tree_digest(tmp_path/'ref.zarr/f')
    else:
        chunks = lambda p: {k: v for k, v in tree_digest(p).items() if not k.endswith('zarr.json')}   # attrs name the input paths
        assert chunks(tmp_path/'run.zarr/s') == chunks(tmp_path/'ref.zarr/s') and len(chunks(tmp_path/'ref.zarr/s')) > 10

def test_bad_inputs_exit_2_and_outputs_kept(data, tmp_path):
    p1, gt = f"{data}/fibsem-gala/train-p1.lzf.h5:stack", f"{data}/fibsem-gala/train-gt.lzf.h5:stack"
    ok(connecto('fragments', '--boundaries', p1, '--out', tmp_path/'s.zarr/f', '--block-shape', '25,50,100', '--json', '--quiet'))
    before = tree_digest(tmp_path/'s.zarr')
    np.save(tmp_path/'empty.npy', np.zeros((0, 16, 16), np.float32))
    np.save(tmp_path/'ones.npy', np.ones((8, 32, 32), np.float32))
    np.save(tmp_path/'nan.npy', np.full((8, 32, 32), np.nan, np.float32))
    np.save(tmp_path/'zeros.npy', np.zeros((50, 100, 200), np.uint32))
    cases = {
        'label volume of floats': (('evaluate', '--seg', p1, '--gt', gt), 'integers'),
        'fragments of floats': (('agglomerate', '--fragments', p1, '--boundaries', p1, '--out', tmp_path/'x.zarr/s', '--threshold', '0.5'), 'integer labels'),
        'shapes differ': (('agglomerate', '--fragments', tmp_path/'s.zarr/f', '--boundaries', data/'snemi-mini/train-probabilities.tif',
                           '--out', tmp_path/'x.zarr/s', '--threshold', '0.5'), 'same region'),
        'shapes differ (evaluate)': (('evaluate', '--seg', tmp_path/'s.zarr/f', '--gt', data/'snemi-mini/train-labels.tif'), 'shape'),
        'empty volume': (('fragments', '--boundaries', tmp_path/'empty.npy', '--out', tmp_path/'x.zarr/f'), 'empty volume'),
        'empty ground truth': (('evaluate', '--seg', tmp_path/'s.zarr/f', '--gt', tmp_path/'zeros.npy'), 'no labelled voxels'),
        'all-boundary volume': (('fragments', '--boundaries', tmp_path/'ones.npy', '--out', tmp_path/'y.zarr/f'), 'no fragments'),
        'NaN boundaries': (('fragments', '--boundaries', tmp_path/'nan.npy', '--out', tmp_path/'z.zarr/f'), 'NaN'),
        'labels as boundaries': (('fragments', '--boundaries', gt, '--out', tmp_path/'w.zarr/f'), 'labels'),
        'affinities of the wrong shape': (('fragments', '--affinities', p1, '--out', tmp_path/'x.zarr/f'), '(3, z, y, x)'),
        'over an existing output': (('fragments', '--boundaries', p1, '--out', tmp_path/'s.zarr/f', '--block-shape', '25,50,50'), '--overwrite'),
    }
    for name, (argv, expect) in cases.items():
        res = connecto(*argv, '--quiet')
        err = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(err) == 1 and expect in err[0], (name, res.returncode, res.stderr)
    assert tree_digest(tmp_path/'s.zarr') == before

def test_small_chunk_cache_warns_with_the_size_that_fits(voronoi, tmp_path):
    "A decoded-chunk cache too small for the grid: `fragments` warns (one line, the sizes to set) and still runs; the printed size runs without it."
    import re
    from connecto.volume import from_array
    from connecto.blocks import BlockGrid
    from connecto.order import cache_estimate
    src = from_array(np.load(voronoi[1]), tmp_path/'b.zarr/boundaries', chunks=(16, 32, 32)).spec
    small = 5 * 16 * 32 * 32 * 4                                        # 5 chunks of float32
    est = cache_estimate(BlockGrid((48, 192, 192), (16, 32, 32), 8), small, 4)
    def run(name, gib):
        (tmp_path/f'{name}.yaml').write_text(f"cache_size_gb: {gib!r}\n")
        res = connecto('fragments', '--boundaries', src, '--out', tmp_path/f'{name}.zarr/f', '--block-shape', '16,32,32',
                       '--config', tmp_path/f'{name}.yaml', '--json', '--quiet')
        return ok(res), [l for l in res.stderr.splitlines() if 'cache_size_gb' in l]
    first, said = run('small', small / 2**30)
    assert est['decodes'] >= 2 and len(said) == 1 and f"about {est['decodes']:.1f} times" in said[0], (est, said)
    twice, once = map(float, re.search(r"to ([\d.]+) for about 2 decodes each or ([\d.]+) for one", said[0]).groups())
    assert twice * 2**30 >= est['twice_bytes'] and once * 2**30 >= est['once_bytes']
    again, quiet = run('advised', once)
    assert quiet == [] and first['fragments'] == again['fragments'] > 20
