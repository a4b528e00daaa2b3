"The stage notebooks under papermill (`connecto run`), pipelines that resume after SIGKILL, and `connecto demo`."
import json, os, signal, subprocess, sys, time
import numpy as np
import pytest
import yaml
from conftest import connecto

def gala(name): return f'sample:fibsem-gala/{name}:stack'

def run(*args, cwd, **kw):
    r = connecto(*args, '--json', '--quiet', cwd=cwd, **kw)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)

def test_every_stage_notebook_runs_on_gala(tmp_path, data):
    "ingest -> train -> predict -> fragments -> automl -> agglomerate -> evaluate, each `connecto run STAGE` into one run folder."
    rd, env = tmp_path/'run', {**os.environ, 'CONNECTO_DATA': str(data)}
    go = lambda stage, *p, step=None: run('run', stage, '--run-dir', rd, *sum((('-p', k, v) for k, v in p), ()),
                                          *(('--step', step) if step else ()), cwd=tmp_path, env=env)
    p1, frags = gala('train-p1.lzf.h5'), str(rd/'data.zarr/p1-fragments')     # a 12-iteration model predicts no boundaries yet
    go('ingest')                                                                  # the defaults: gala raw + gt
    t = go('train', ('iterations', 12), ('output_shape', '[4,24,24]'), ('model', '{features: 4, factors: [[1,2,2],[1,2,2]]}'))
    assert t['metrics']['iterations'] == 12 and np.isfinite(t['metrics']['val_loss'])
    go('predict', ('block_shape', '25,50,100'))
    f = go('fragments')
    assert f['metrics']['blocks_done'] > 0
    go('fragments', ('boundaries', p1), ('out', frags), step='fragments-p1')
    a = go('automl', ('fragments', frags), ('boundaries', p1), ('trials', 3), ('model_name', "''"))
    assert 0 <= a['metrics']['cv_voi'] < 10
    g = go('agglomerate', ('fragments', frags), ('boundaries', p1), ('classifier', str(rd/'classifier')))
    assert g['metrics']['segments'] > 1
    e = go('evaluate')
    m = json.loads((rd/'metrics.json').read_text())
    assert list(m) == ['ingest', 'train', 'predict', 'fragments', 'fragments-p1', 'automl', 'agglomerate', 'evaluate']
    assert e['metrics']['voi'] == pytest.approx(e['metrics']['voi_split'] + e['metrics']['voi_merge'], abs=1e-5)
    for step, entry in m.items():
        assert (rd/f'{step}.ipynb').is_file() and all((rd/fig).is_file() for fig in entry['figures']), step
    r = run('report', rd, cwd=tmp_path)
    assert (rd/'report.html').is_file() and 'evaluate' in r['steps']

def test_bad_stage_and_parameter_are_one_line_exit_2(tmp_path):
    for argv in [('run', 'segment'), ('run', 'evaluate', '-p', 'segs', 'x'), ('run', 'train', '-p', 'iterations', 'many'),
                 ('run', 'evaluate', '-p', 'seg', tmp_path/'missing.zarr/seg', '--run-dir', tmp_path/'r'),
                 ('pipeline', tmp_path/'missing.yaml'), ('report', tmp_path)]:
        r = connecto(*argv, '--quiet', cwd=tmp_path)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (argv, r.stderr)
    assert not (tmp_path/'r'/'metrics.json').exists()

PIPELINE = {'run_dir': 'run', 'defaults': {'workers': 0}, 'steps': [
    {'stage': 'ingest', 'params': {'sources': {'raw': gala('train-image.h5'), 'gt': gala('train-gt.lzf.h5'), 'p1': gala('train-p1.lzf.h5')},
                                   'block_shape': [25, 50, 100]}},
    {'stage': 'fragments', 'params': {'boundaries': 'run/data.zarr/p1', 'block_shape': [25, 50, 100]}},
    {'stage': 'agglomerate', 'params': {'boundaries': 'run/data.zarr/p1', 'threshold': 0.7}},
    {'stage': 'evaluate'}]}

def test_pipeline_killed_with_sigkill_resumes(tmp_path, data):
    env = {**os.environ, 'CONNECTO_DATA': str(data)}
    (tmp_path/'p.yaml').write_text(yaml.safe_dump(PIPELINE))
    p = subprocess.Popen([sys.executable, '-m', 'connecto.cli', 'pipeline', 'p.yaml', '--quiet'], cwd=tmp_path, env=env,
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state, t0 = tmp_path/'run'/'pipeline.json', time.time()
    while time.time() - t0 < 300:                        # kill the run (and its kernel) once a step is running after one finished
        s = json.loads(state.read_text()) if state.is_file() else {}
        if any(v['status'] == 'done' for v in s.values()) and any(v['status'] == 'running' for v in s.values()): break
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    killed = json.loads(state.read_text())
    assert 'evaluate' not in killed or killed['evaluate']['status'] != 'done', 'the run ended before it could be killed'
    r = run('pipeline', 'p.yaml', cwd=tmp_path, env=env)
    status = {s['step']: s['status'] for s in r['steps']}
    done_before = [k for k, v in killed.items() if v['status'] == 'done']
    assert done_before and all(status[k] == 'skipped' for k in done_before), (killed, status)
    assert status['evaluate'] == 'done'
    ref = run('evaluate', '--seg', tmp_path/'run/data.zarr/segmentation', '--gt', data/'fibsem-gala/train-gt.lzf.h5:stack', cwd=tmp_path)
    assert r['metrics']['evaluate']['voi'] == pytest.approx(ref['voi'], abs=1e-6) and ref['voi'] < 1.0

def test_demo_end_to_end_small(tmp_path):
    "`connecto demo` on small synthetic volumes (the README's main job runs the full-size one)."
    s = run('demo', '--out', tmp_path/'demo', '--iterations', 60, '--minutes', 10, '--trials', 3, '--shape', '24,96,96', cwd=tmp_path,
            timeout=1200)                                           # a fixed number of iterations: the same model on a busy machine
    assert {'run_dir', 'voi', 'voi_split', 'voi_merge', 'arand', 'seconds'} <= set(s)
    assert s['held_out'] and np.isfinite(s['voi']) and 0 <= s['arand'] <= 1
    assert (tmp_path/'demo'/'report.html').is_file() and (tmp_path/'demo'/'evaluate.ipynb').is_file()
