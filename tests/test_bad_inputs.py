"""A battery of malformed inputs across every command: each exits with 2, says on exactly one stderr line what is wrong (no
traceback) and leaves the disk as it was.

One module fixture builds small finished outputs once (an ingested volume, fragments, an agglomerated segmentation, a trained
checkpoint and its prediction, a run folder) plus broken copies and bad config files; every case then runs `connecto ...` in a
subprocess with that folder as its working directory, and the whole folder is hashed before and after the case."""
import hashlib, os, re, shutil, signal, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import yaml
from conftest import DATA, voronoi_volume

P1 = f"{DATA/'fibsem-gala'/'train-p1.lzf.h5'}"                 # a real float32 boundary map, dataset `stack`
GT_H5 = f"{DATA/'fibsem-gala'/'train-gt.lzf.h5'}:stack"          # real int32 labels
BS = '16,32,32'                                                  # the block shape of the finished outputs
NOPE = '/proc/connecto-nope'                                     # a folder that cannot be created, even by root
LOCK = 'lock'                                                    # the engine's lease record (pid, time, token) in .connecto/

def _cli(argv, cwd, timeout):
    "Run `connecto ARGV` in its own process group; kill the group on timeout. Returns (rc or None, stdout, stderr)."
    env = {**os.environ, 'CONNECTO_DATA': str(DATA)}
    env.pop('MLFLOW_TRACKING_URI', None)
    p = subprocess.Popen([sys.executable, '-m', 'connecto.cli', *map(str, argv)], cwd=cwd, env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return None, out, err

def snapshot(root):
    """{relative path: sha256 | 'dir' | 'lock'} of everything under `root`: every file hashed (the engine's state folder
    included), every folder listed (an empty folder left behind counts); a lease file in .connecto/ is only required to stay
    where it is (a run that takes the lock rewrites its pid and time)."""
    root, snap = Path(root), {}
    for p in sorted(root.rglob('*')):
        rel = str(p.relative_to(root))
        if p.is_symlink(): snap[rel] = 'link:' + os.readlink(p)
        elif p.is_dir(): snap[rel] = 'dir'
        elif p.name == LOCK and '.connecto' in p.parts: snap[rel] = 'lock'
        else: snap[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return snap

def diff(before, after):
    added = sorted(set(after) - set(before)); removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return {k: v[:12] + (['...'] if len(v) > 12 else []) for k, v in
            {'added': added, 'removed': removed, 'changed': changed}.items() if v}

def _ok(argv, cwd, timeout=600):
    rc, out, err = _cli([*argv, '--quiet'], cwd, timeout)
    assert rc == 0, (argv, rc, err[-3000:])
    return out

TRAIN_CONFIG = """model: {features: 2, factors: [[1, 2, 2]]}
output_shape: [4, 16, 16]
batch_size: 1
val_interval: 2
checkpoint_interval: 2
"""

@pytest.fixture(scope='module')
def built(tmp_path_factory):
    "A folder of small finished outputs, broken copies and bad files; the cases run inside it (paths are relative to it)."
    T = tmp_path_factory.mktemp('bad-inputs')
    gt, b = voronoi_volume((16, 64, 64), n_cells=12, seed=0)
    np.save(T/'gt.npy', gt); np.save(T/'b.npy', b)
    np.save(T/'raw.npy', ((1 - b) * 200 + 20).astype(np.uint8))
    np.save(T/'nan.npy', np.full((16, 64, 64), np.nan, np.float32))
    (T/'train.yaml').write_text(TRAIN_CONFIG)
    # finished outputs, in two waves of parallel runs (2 cores, most of the time is imports and JIT)
    wave1 = [['ingest', 'raw.npy', 'd.zarr/raw', '--block-shape', BS],
             ['ingest', 'b.npy', 'in.zarr/b', '--block-shape', BS],
             ['fragments', '--boundaries', 'b.npy', '--out', 's.zarr/f', '--block-shape', BS],
             ['train', '--raw', 'raw.npy', '--gt', 'gt.npy', '--out', 'tr', '--iterations', 2, '--config', 'train.yaml']]
    wave2 = [['agglomerate', '--fragments', 's.zarr/f', '--boundaries', 'b.npy', '--out', 's.zarr/seg', '--threshold', 0.5,
              '--block-shape', BS],
             ['predict', '--raw', 'raw.npy', '--model', 'tr/checkpoints/best.pt', '--out', 'p.zarr/p', '--block-shape', BS],
             ['run', 'evaluate', '-p', 'seg', 's.zarr/f', '-p', 'gt', 'gt.npy', '--run-dir', 'run']]
    from concurrent.futures import ThreadPoolExecutor
    for wave in (wave1, wave2):
        with ThreadPoolExecutor(len(wave)) as ex: list(ex.map(lambda a: _ok(a, T), wave))
    assert (T/'tr/checkpoints/best.pt').is_file() and (T/'run/metrics.json').is_file()
    # broken copies of a Zarr input
    for name in ('bad', 'badjson', 'badgroup'): shutil.copytree(T/'in.zarr', T/f'{name}.zarr')
    shutil.copytree(T/'s.zarr', T/'badseg.zarr')                  # labels with a corrupt chunk, for evaluate
    for chunk in (T/'bad.zarr/b/s0/c/0/0/0', T/'badseg.zarr/f/s0/c/0/0/0'):
        assert chunk.is_file(), sorted(str(p.relative_to(T)) for p in chunk.parents[3].rglob('*'))
        chunk.write_bytes(b'\xde\xad\xbe\xef garbage, not a compressed chunk' * 3)
    assert (T/'badjson.zarr/b/s0/zarr.json').is_file() and (T/'badgroup.zarr/b/zarr.json').is_file()
    (T/'badjson.zarr/b/s0/zarr.json').write_text('{"zarr_format": 3, "node_type": "array", "shape": [16, 64')
    (T/'badgroup.zarr/b/zarr.json').write_text('this is not JSON')
    # file-system obstacles
    (T/'afile.txt').write_text('a regular file\n')
    (T/'reg.zarr').write_text('a regular file named like a Zarr container\n')
    (T/'emptydir').mkdir()                                        # a classifier folder without model.json (and anything else)
    (T/'nomodel').mkdir()                                         # classifier.json as automl writes it, but no model.json
    (T/'nomodel'/'classifier.json').write_text('{"features": ["boundary_mean"], "threshold": 0.5}\n')
    (T/'notrun').mkdir(); (T/'notrun'/'notes.txt').write_text('not a run folder\n')
    # configs
    (T/'cfg-unknown.yaml').write_text('chunk_sise: [16, 32, 32]\n')
    (T/'cfg-negchunk.yaml').write_text('chunk_size: [-16, 32, 32]\n')
    (T/'cfg-notyaml.yaml').write_text('chunk_size: [16, 32\nworkers: : : {\n')
    (T/'train-unknown.yaml').write_text(TRAIN_CONFIG + 'iterationz: 3\n')
    # pipelines
    ok_steps = [{'stage': 'evaluate', 'params': {'seg': 's.zarr/f', 'gt': 'gt.npy'}}]
    pipelines = {'p-unknown-stage': {'run_dir': 'prun1', 'steps': [{'stage': 'segmentify'}]},
                 'p-bad-param': {'run_dir': 'prun2', 'steps': [{'stage': 'evaluate', 'params': {'segz': 's.zarr/f', 'gt': 'gt.npy'}}]},
                 'p-range': {'run_dir': 'prun3', 'steps': [{'stage': 'fragments', 'params': {'boundaries': 'b.npy', 'out': 'prun3.zarr/f',
                                                                                            'threshold': 7}}]},
                 'p-good': {'run_dir': 'prun4', 'steps': ok_steps},
                 'p-run-dir-file': {'run_dir': 'afile.txt', 'steps': ok_steps}}
    for name, p in pipelines.items(): (T/f'{name}.yaml').write_text(yaml.safe_dump(p))
    (T/'p-notyaml.yaml').write_text('run_dir: prun5\nsteps: [{stage: evaluate, params: {seg: x\n  - ]]: :\n')
    return T

FRAG = ['fragments', '--boundaries', 'b.npy', '--out', 's.zarr/f', '--block-shape', BS]                     # the finished fragments
INGEST = ['ingest', 'raw.npy', 'd.zarr/raw', '--block-shape', BS]                                         # the finished ingest
PREDICT = ['predict', '--raw', 'raw.npy', '--model', 'tr/checkpoints/best.pt', '--out', 'p.zarr/p', '--block-shape', BS]
AGGLO = ['agglomerate', '--fragments', 's.zarr/f', '--boundaries', 'b.npy', '--out', 's.zarr/seg', '--threshold', 0.5,
         '--block-shape', BS]                                                                             # the finished segmentation
NEWFRAG = lambda out: ['fragments', '--boundaries', 'b.npy', '--out', out, '--block-shape', BS]
AUTOML = lambda out, *extra: ['automl', '--fragments', 's.zarr/f', '--boundaries', 'b.npy', '--gt', 'gt.npy', '--raw', 'none',
                              '--out', out, '--trials', 1, '--folds', 2, *extra]
TRAIN = lambda out, *extra: ['train', '--raw', 'raw.npy', '--gt', 'gt.npy', '--out', out, '--iterations', 1, '--config', 'train.yaml',
                             *extra]
DEMO = lambda out, *extra: ['demo', '--out', out, '--minutes', 0.1, '--iterations', 1, '--trials', 1, '--shape', '8,32,32', *extra]
SUBMIT = lambda *extra: ['submit', 'fragments', '--image', 'ghcr.io/connecto/connecto:0.1.0', '--run-id', 'r1', '--dry-run', *extra]
RUNFRAG = lambda *extra: ['run', 'fragments', '--run-dir', 'run', '-p', 'boundaries', 'b.npy', '-p', 'out', 'runfrag.zarr/f', *extra]
EVAL = ['evaluate', '--seg', 's.zarr/seg', '--gt', 'gt.npy']

# (pytest id, argv relative to the fixture folder, regexes that the one stderr line must all match)
CASES = [
    # options that are bad on a FINISHED output (the ledger must not skip the checks)
    ('finished-ingest-workers-neg', [*INGEST, '--workers', -1], [r'--workers|workers']),
    ('finished-fragments-workers-neg', [*FRAG, '--workers', -1], [r'--workers|workers']),
    ('finished-predict-workers-neg', [*PREDICT, '--workers', -1], [r'--workers|workers']),
    ('finished-agglomerate-workers-neg', [*AGGLO, '--workers', -1], [r'--workers|workers']),
    ('evaluate-workers-neg', [*EVAL, '--workers', -1], [r'--workers|workers']),
    ('finished-predict-batch-size-0', [*PREDICT, '--batch-size', 0], [r'batch.size']),
    ('finished-fragments-scheduler-malformed', [*FRAG, '--scheduler', 'notanaddress'], [r'scheduler', r'notanaddress']),
    ('finished-ingest-scheduler-malformed', [*INGEST, '--scheduler', 'notanaddress'], [r'scheduler', r'notanaddress']),
    ('finished-fragments-block-shape-0', [*FRAG[:-2], '--block-shape', '0,1,1'], [r'block.shape']),
    ('finished-predict-block-shape-0', [*PREDICT[:-2], '--block-shape', '0,1,1'], [r'block.shape']),
    ('finished-agglomerate-threshold-5', [*AGGLO[:-4], '--threshold', 5, '--block-shape', BS], [r'threshold']),
    ('finished-fragments-config-unknown-key', [*FRAG, '--config', 'cfg-unknown.yaml'], [r'chunk_sise']),
    # out-of-range values
    ('fragments-threshold-0', [*NEWFRAG('r1.zarr/f'), '--threshold', 0], [r'threshold']),
    ('fragments-threshold-1.5', [*NEWFRAG('r2.zarr/f'), '--threshold', 1.5], [r'threshold']),
    ('fragments-min-size-neg', [*NEWFRAG('r3.zarr/f'), '--min-size', -1], [r'min.size']),
    ('fragments-halo-neg', [*NEWFRAG('r4.zarr/f'), '--halo', -1], [r'halo']),
    ('fragments-seed-radius-neg', [*NEWFRAG('r5.zarr/f'), '--seed-radius', -1], [r'seed.radius']),
    ('agglomerate-thresholds-out-of-range', [*AGGLO[:-6], '--out', 'r6.zarr/seg', '--thresholds', '0.3,2', '--block-shape', BS],
     [r'threshold']),
    ('ingest-voxel-size-0', ['ingest', 'raw.npy', 'r7.zarr/raw', '--block-shape', BS, '--voxel-size', '0,1,1'], [r'voxel.size']),
    ('evaluate-block-shape-neg', [*EVAL, '--block-shape=-1,32,32'], [r'block.shape']),     # '=': argparse would take -1,.. for an option
    ('predict-overlap-neg', [*PREDICT[:-3], 'r8.zarr/p', '--block-shape', BS, '--overlap=-1,0,0'], [r'overlap']),
    ('demo-minutes-neg', DEMO('demo-m', '--minutes', -1), [r'minutes']),
    ('demo-trials-0', DEMO('demo-t', '--trials', 0), [r'trials']),
    ('demo-shape-0', DEMO('demo-s', '--shape', '0,32,32'), [r'shape']),
    ('automl-folds-1', AUTOML('aml-f', '--folds', 1), [r'folds']),      # must refuse before writing features
    ('automl-trials-0', AUTOML('aml-t', '--trials', 0), [r'trials']),
    ('automl-timeout-neg', AUTOML('aml-to', '--timeout', -5), [r'timeout']),
    ('train-iterations-0', TRAIN('tr-i', '--iterations', 0), [r'iterations']),
    ('train-batch-size-0', TRAIN('tr-b', '--batch-size', 0), [r'batch.size']),
    ('submit-gpus-neg', SUBMIT('--gpus', -1), [r'gpus']),
    ('submit-backoff-limit-neg', SUBMIT('--backoff-limit', -1), [r'backoff.limit']),
    ('submit-dask-workers-neg', SUBMIT('--dask-workers', -1), [r'dask.workers']),
    ('submit-param-out-of-range', SUBMIT('-p', 'threshold', 7), [r'threshold']),
    ('run-fragments-threshold-7', RUNFRAG('-p', 'threshold', 7), [r'threshold']),
    ('run-fragments-unknown-param', RUNFRAG('-p', 'nosuchparam', 1), [r'nosuchparam']),
    # file-system conditions
    ('fragments-out-under-regular-file', NEWFRAG('afile.txt/x.zarr/f'), [r'afile\.txt']),
    ('fragments-out-container-is-regular-file', NEWFRAG('reg.zarr/f'), [r'reg\.zarr']),
    ('ingest-dst-container-is-regular-file', ['ingest', 'raw.npy', 'reg.zarr/raw', '--block-shape', BS], [r'reg\.zarr']),
    ('train-out-is-regular-file', TRAIN('afile.txt'), [r'afile\.txt']),
    ('automl-out-is-regular-file', AUTOML('afile.txt'), [r'afile\.txt']),
    ('run-dir-is-regular-file', ['run', 'evaluate', '-p', 'seg', 's.zarr/f', '-p', 'gt', 'gt.npy', '--run-dir', 'afile.txt'],
     [r'afile\.txt']),
    ('fragments-out-cannot-be-created', NEWFRAG(f'{NOPE}/x.zarr/f'), [re.escape(NOPE)]),
    ('train-out-cannot-be-created', TRAIN(f'{NOPE}/tr'), [re.escape(NOPE)]),
    ('demo-out-cannot-be-created', DEMO(f'{NOPE}/demo'), [re.escape(NOPE)]),
    ('source-array-zarr-json-not-json', NEWFRAG('r9.zarr/f')[:2] + ['badjson.zarr/b'] + NEWFRAG('r9.zarr/f')[3:],
     [r'badjson\.zarr\S*zarr\.json']),
    ('source-group-zarr-json-not-json', ['ingest', 'badgroup.zarr/b', 'r10.zarr/b', '--block-shape', BS],
     [r'badgroup\.zarr\S*zarr\.json']),
    ('missing-input-npy', NEWFRAG('r11.zarr/f')[:2] + ['missing.npy'] + NEWFRAG('r11.zarr/f')[3:], [r'missing\.npy']),
    ('missing-input-zarr', [*EVAL[:2], 'missing.zarr/seg', *EVAL[3:]], [r'missing\.zarr']),
    ('missing-hdf5-file', ['ingest', 'missing.h5:stack', 'r12.zarr/raw'], [r'missing\.h5']),
    ('missing-hdf5-dataset', ['fragments', '--boundaries', f'{P1}:nosuchdataset', '--out', 'r13.zarr/f'], [r'nosuchdataset']),
    ('labels-as-boundaries', ['fragments', '--boundaries', GT_H5, '--out', 'r14.zarr/f'], [r'label']),
    ('labels-npy-as-boundaries', NEWFRAG('r15.zarr/f')[:2] + ['gt.npy'] + NEWFRAG('r15.zarr/f')[3:], [r'label']),
    ('nan-boundaries', NEWFRAG('r16.zarr/f')[:2] + ['nan.npy'] + NEWFRAG('r16.zarr/f')[3:], [r'NaN']),
    ('corrupt-chunk-fragments', NEWFRAG('r17.zarr/f')[:2] + ['bad.zarr/b'] + NEWFRAG('r17.zarr/f')[3:], [r'(?i)chunk', r'bad\.zarr']),
    ('corrupt-chunk-ingest', ['ingest', 'bad.zarr/b', 'r18.zarr/b', '--block-shape', BS], [r'(?i)chunk', r'bad\.zarr']),
    ('corrupt-chunk-evaluate', ['evaluate', '--seg', 'badseg.zarr/f', '--gt', 'gt.npy'], [r'(?i)chunk', r'badseg\.zarr']),
    ('classifier-empty-folder', [*AGGLO[:-6], '--out', 'r19.zarr/seg', '--classifier', 'emptydir'],
     [r'classifier\.json|model\.json', r'emptydir']),
    ('classifier-without-model-json', [*AGGLO[:-6], '--out', 'r24.zarr/seg', '--classifier', 'nomodel'], [r'model\.json', r'nomodel']),
    # refused runs that must not leave anything behind
    ('report-not-a-run-folder', ['report', 'notrun'], [r'notrun']),
    ('demo-missing-raw', ['demo', '--raw', 'missing.h5:x', '--gt', 'missing.h5:y', '--out', 'demo-r'], [r'missing\.h5']),
    ('pipeline-unknown-stage', ['pipeline', 'p-unknown-stage.yaml'], [r'segmentify']),
    ('pipeline-bad-param', ['pipeline', 'p-bad-param.yaml'], [r'segz']),
    ('pipeline-param-out-of-range', ['pipeline', 'p-range.yaml'], [r'threshold']),
    ('pipeline-not-yaml', ['pipeline', 'p-notyaml.yaml'], [r'p-notyaml\.yaml']),
    ('pipeline-from-unknown-step', ['pipeline', 'p-good.yaml', '--from', 'nosuchstep'], [r'nosuchstep']),
    ('pipeline-run-dir-is-regular-file', ['pipeline', 'p-run-dir-file.yaml'], [r'afile\.txt']),
    # bad config
    ('config-unknown-key', [*NEWFRAG('r20.zarr/f'), '--config', 'cfg-unknown.yaml'], [r'chunk_sise']),
    ('config-negative-chunk-size', ['ingest', 'raw.npy', 'r21.zarr/raw', '--config', 'cfg-negchunk.yaml'], [r'chunk_size']),
    ('config-not-yaml', [*NEWFRAG('r22.zarr/f'), '--config', 'cfg-notyaml.yaml'], [r'cfg-notyaml\.yaml']),
    ('config-missing-file', [*NEWFRAG('r23.zarr/f'), '--config', 'missing.yaml'], [r'missing\.yaml']),
    ('health-config-missing-file', ['health', '--config', 'missing.yaml'], [r'missing\.yaml']),
    ('health-config-not-yaml', ['health', '--config', 'cfg-notyaml.yaml'], [r'cfg-notyaml\.yaml']),
    ('train-config-unknown-key', TRAIN('tr-c', '--config', 'train-unknown.yaml'), [r'iterationz']),
]
assert len({c[0] for c in CASES}) == len(CASES) >= 45

@pytest.mark.timeout(400)
@pytest.mark.parametrize('argv,expect', [pytest.param(a, e, id=i) for i, a, e in CASES])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(built, argv, expect):
    before = snapshot(built)
    rc, out, err = _cli([*argv, '--quiet'], built, timeout=120)
    after = snapshot(built)
    lines = [l for l in err.splitlines() if l.strip()]
    line = lines[0] if len(lines) == 1 else ''
    problems = []
    if rc != 2: problems.append(f'exit code {rc} (killed after 120 s)' if rc is None else f'exit code {rc}, not 2')
    if len(lines) != 1: problems.append(f'{len(lines)} stderr lines, not 1')
    if re.search(r'Traceback|Stack trace|File "|\[bt\] \(\d+\)|\.(cc|cpp|h):\d+', err):
        problems.append('a traceback or a library stack trace on stderr')
    missing = [p for p in expect if not re.search(p, line)]
    if missing: problems.append(f'the line does not match {missing}')
    changed = diff(before, after)
    if changed: problems.append(f'the disk changed: {changed}')
    assert not problems, '; '.join(problems) + f'\n--- stderr ({len(err)} chars, last 1500):\n{err[-1500:]}\n--- stdout (last 300):\n{out[-300:]}'
