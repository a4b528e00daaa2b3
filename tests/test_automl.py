"Learned agglomeration end to end through the CLI: connecto automl -> agglomerate --classifier -> evaluate, on the gala crop."
import json, os
from pathlib import Path
import numpy as np
import pytest
from conftest import connecto, tree_digest

def gala(data, name): return f"{data/'fibsem-gala'/name}:stack"

@pytest.fixture(scope='module')
def trained(data, tmp_path_factory):
    "A classifier trained by `connecto automl` (4 trials) on the gala crop with raw: (folder, its JSON summary)."
    out = tmp_path_factory.mktemp('automl')/'clf'
    r = connecto('automl', '--fragments', gala(data, 'train-ws.lzf.h5'), '--boundaries', gala(data, 'train-p1.lzf.h5'),
                 '--gt', gala(data, 'train-gt.lzf.h5'), '--raw', gala(data, 'train-image.h5'), '--out', out, '--trials', 4,
                 '--json', '--quiet')
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout)

def agglomerate(data, out, classifier, *extra, env=None):
    return connecto('agglomerate', '--fragments', gala(data, 'train-ws.lzf.h5'), '--boundaries', gala(data, 'train-p1.lzf.h5'),
                    '--raw', gala(data, 'train-image.h5'), '--classifier', classifier, '--out', out, '--json', '--quiet', *extra, env=env)

def test_automl_writes_a_classifier_tracked_in_mlflow(trained):
    out, s = trained
    assert {'cv_voi', 'threshold', 'mlflow_run_id', 'model_uri', 'trials'} <= set(s)
    assert (out/'model.json').is_file() and (out/'classifier.json').is_file() and (out/'feature_importance.png').is_file()
    meta = json.loads((out/'classifier.json').read_text())
    assert meta['threshold'] == s['threshold'] and len(meta['features']) == s['features'] and meta['raw']
    import mlflow
    client = mlflow.tracking.MlflowClient(f"sqlite:///{out.resolve()}/mlflow.db")
    parent = client.get_run(s['mlflow_run_id'])
    kids = client.search_runs([parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(kids) == s['trials']['total'] == 4
    assert parent.data.metrics['cv_voi'] == pytest.approx(s['cv_voi'])
    assert client.get_model_version_by_alias('connecto-agglomeration', 'production').run_id == parent.info.run_id

def test_learned_agglomeration_beats_the_fragments_and_reloads_identically(data, trained, tmp_path):
    out, s = trained
    r = agglomerate(data, tmp_path/'a.zarr/seg', out)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)['outputs'][0]['threshold'] == pytest.approx(s['threshold'])   # the classifier's threshold
    env = {**os.environ, 'MLFLOW_TRACKING_URI': f"sqlite:///{out.resolve()}/mlflow.db"}
    r = agglomerate(data, tmp_path/'b.zarr/seg', 'models:/connecto-agglomeration@production', env=env)
    assert r.returncode == 0, r.stderr
    from connecto.volume import Volume
    a, b = Volume(str(tmp_path/'a.zarr/seg'))[...], Volume(str(tmp_path/'b.zarr/seg'))[...]
    assert np.array_equal(a, b)                               # folder and registry give the same segmentation
    seg = json.loads(connecto('evaluate', '--seg', tmp_path/'a.zarr/seg', '--gt', gala(data, 'train-gt.lzf.h5'), '--json', '--quiet').stdout)
    frags = json.loads(connecto('evaluate', '--seg', gala(data, 'train-ws.lzf.h5'), '--gt', gala(data, 'train-gt.lzf.h5'), '--json').stdout)
    assert seg['voi'] < 0.5 * frags['voi'], (seg, frags)

def test_bad_inputs_exit_2_and_outputs_kept(data, trained, tmp_path):
    out, _ = trained
    ok = agglomerate(data, tmp_path/'ok.zarr/seg', out)
    assert ok.returncode == 0, ok.stderr
    before = tree_digest(tmp_path/'ok.zarr')
    from connecto.volume import from_array
    from_array(np.zeros((50, 100, 100), np.uint32), str(tmp_path/'small.zarr/gt'))
    bogus = tmp_path/'bogus'; bogus.mkdir()
    (bogus/'model.json').write_bytes((out/'model.json').read_bytes())
    meta = json.loads((out/'classifier.json').read_text()); meta['features'] = meta['features'] + ['curvature_of_spacetime']
    (bogus/'classifier.json').write_text(json.dumps(meta))
    from_array(np.ones((50, 100, 200), np.uint32), str(tmp_path/'one.zarr/fragments'))
    cases = {
        'no edges': connecto('automl', '--fragments', tmp_path/'one.zarr/fragments', '--boundaries', gala(data, 'train-p1.lzf.h5'),
                             '--gt', gala(data, 'train-gt.lzf.h5'), '--out', tmp_path/'y', '--trials', 1, '--quiet'),
        'gt shape': connecto('automl', '--fragments', gala(data, 'train-ws.lzf.h5'), '--boundaries', gala(data, 'train-p1.lzf.h5'),
                             '--gt', tmp_path/'small.zarr/gt', '--out', tmp_path/'x', '--trials', 1, '--quiet'),
        'no raw': connecto('agglomerate', '--fragments', gala(data, 'train-ws.lzf.h5'), '--boundaries', gala(data, 'train-p1.lzf.h5'),
                           '--classifier', out, '--out', tmp_path/'ok.zarr/seg', '--quiet'),
        'other features': agglomerate(data, tmp_path/'ok.zarr/seg', bogus),
        'not a classifier': agglomerate(data, tmp_path/'ok.zarr/seg', tmp_path),
    }
    for what, r in cases.items():
        assert r.returncode == 2, (what, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, (what, r.stderr)
    assert 'curvature_of_spacetime' in cases['other features'].stderr and '--raw' in cases['no raw'].stderr
    assert 'no edges' in cases['no edges'].stderr
    assert tree_digest(tmp_path/'ok.zarr') == before                      # the existing output is untouched

def test_parallel_trials_share_a_journal_and_resume(data, tmp_path):
    "Trials in 2 threads, then on 2 Dask worker processes, all in one journal file; the second call resumes the study."
    from connecto.automl import automl, open_study
    args = (gala(data, 'train-ws.lzf.h5'), gala(data, 'train-p1.lzf.h5'), gala(data, 'train-gt.lzf.h5'), str(tmp_path/'clf'))
    first = automl(*args, trials=4, n_jobs=2, model_name=None, progress=False)
    second = automl(*args, trials=2, workers=2, model_name=None, progress=False)
    assert (first.trials['total'], second.trials['total']) == (4, 6)
    assert second.mlflow_run_id == first.mlflow_run_id
    study = open_study(str(tmp_path/'clf'))
    assert len(study.trials) == 6 and all(t.state.is_finished() for t in study.trials)
