"""Run folders on an S3 object store, as Kubernetes Jobs without a shared volume use them: a real S3 API server
(moto's, on loopback) reached by s3fs, the stages run by `connecto pipeline` in subprocesses with separate local mirrors."""
import json, os, socket
import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer
from conftest import connecto

def gala(name): return f'sample:fibsem-gala/{name}:stack'

@pytest.fixture(scope='module')
def s3():
    "An S3 server on loopback with a bucket `lab-runs`; yields the environment that points s3fs at it."
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address='127.0.0.1', port=port, verbose=False); server.start()
    env = {'AWS_ENDPOINT_URL': f'http://127.0.0.1:{port}', 'AWS_ACCESS_KEY_ID': 'connecto', 'AWS_SECRET_ACCESS_KEY': 'connecto',
           'AWS_DEFAULT_REGION': 'us-east-1'}
    client = boto3.client('s3', endpoint_url=env['AWS_ENDPOINT_URL'], aws_access_key_id='connecto', aws_secret_access_key='connecto',
                          region_name='us-east-1')
    client.create_bucket(Bucket='lab-runs')
    yield env, client
    server.stop()

def keys(client, prefix):
    pages = client.get_paginator('list_objects_v2').paginate(Bucket='lab-runs', Prefix=prefix)
    return {o['Key'][len(prefix):] for page in pages for o in page.get('Contents', [])}

def test_pipeline_with_run_folder_on_s3(tmp_path, data, s3):
    "Records and data land on the store; a second machine (a fresh mirror) finds every step done; `report` reads the store."
    env, client = s3
    machine = lambda name: {**os.environ, **env, 'CONNECTO_DATA': str(data), 'CONNECTO_CACHE': str(tmp_path/name)}
    url, p1 = 's3://lab-runs/runs/gala', gala('train-p1.lzf.h5')
    cfg = {'run_dir': url, 'defaults': {'workers': 0}, 'steps': [
        {'stage': 'fragments', 'params': {'boundaries': p1, 'raw': gala('train-image.h5'), 'block_shape': [25, 50, 100]}},
        {'stage': 'agglomerate', 'params': {'boundaries': p1, 'threshold': 0.7}},
        {'stage': 'evaluate', 'params': {'gt': gala('train-gt.lzf.h5')}}]}
    (tmp_path/'p.yaml').write_text(yaml.safe_dump(cfg))
    r = connecto('pipeline', 'p.yaml', '--json', '--quiet', cwd=tmp_path, env=machine('pod-1'))
    assert r.returncode == 0, r.stderr[-3000:]
    first = json.loads(r.stdout)
    assert [s['status'] for s in first['steps']] == ['done'] * 3 and first['metrics']['evaluate']['voi'] < 1.0
    stored = keys(client, 'runs/gala/')
    for f in ('fragments.ipynb', 'agglomerate.ipynb', 'evaluate.ipynb', 'metrics.json', 'pipeline.json', 'report.html',
              'data.zarr/fragments/zarr.json', 'data.zarr/segmentation/zarr.json', *first['metrics']['evaluate']['figures']):
        assert f in stored, (f, sorted(stored)[:30])
    assert not any(k.startswith('data.zarr') for k in os.listdir(tmp_path/'pod-1'/'runs'/'s3'/'lab-runs'/'runs'/'gala'))
    assert first['metrics']['agglomerate']['outputs'] == [f'{url}/data.zarr/segmentation']
    r = connecto('pipeline', 'p.yaml', '--json', '--quiet', cwd=tmp_path, env=machine('pod-2'))
    assert r.returncode == 0, r.stderr[-3000:]
    assert [s['status'] for s in json.loads(r.stdout)['steps']] == ['skipped'] * 3
    r = connecto('report', url, '--json', '--quiet', cwd=tmp_path, env=machine('laptop'))
    assert r.returncode == 0 and 'evaluate' in json.loads(r.stdout)['steps'], r.stderr[-2000:]
    gone = [{'Key': f'runs/gala/data.zarr/segmentation/{k}'} for k in keys(client, 'runs/gala/data.zarr/segmentation/')]
    client.delete_objects(Bucket='lab-runs', Delete={'Objects': gone})                          # an output gone from the store
    r = connecto('pipeline', 'p.yaml', '--from', 'agglomerate', '--json', '--quiet', cwd=tmp_path, env=machine('pod-2'))
    assert r.returncode == 0 and [s['status'] for s in json.loads(r.stdout)['steps']] == ['done'] * 2, r.stderr[-3000:]

def test_unknown_store_protocol_is_one_line_exit_2(tmp_path):
    r = connecto('run', 'evaluate', '--run-dir', 'nosuchfs://bucket/run', '--quiet', cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'nosuchfs' in r.stderr, r.stderr

def test_killed_on_one_machine_resumes_on_another(tmp_path, data, s3):
    "A Job's pod killed mid-step: the retry, on another node with an empty mirror, skips the blocks the store's ledger holds."
    import signal, subprocess, sys, time
    env, client = s3
    machine = lambda name: {**os.environ, **env, 'CONNECTO_DATA': str(data), 'CONNECTO_CACHE': str(tmp_path/name)}
    url = 's3://lab-runs/runs/killed'
    cfg = {'run_dir': url, 'defaults': {'workers': 0}, 'steps': [
        {'stage': 'fragments', 'params': {'boundaries': gala('train-p1.lzf.h5'), 'block_shape': [10, 25, 50], 'raw': 'none'}}]}
    (tmp_path/'p.yaml').write_text(yaml.safe_dump(cfg))
    p = subprocess.Popen([sys.executable, '-m', 'connecto.cli', 'pipeline', 'p.yaml', '--quiet'], cwd=tmp_path, env=machine('pod-1'),
                         start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while time.time() - t0 < 300 and not any(k.startswith('ledger-') for k in keys(client, 'runs/killed/data.zarr/fragments/.connecto/')):
        time.sleep(0.1)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    assert 'metrics.json' not in keys(client, 'runs/killed/'), 'the step finished before it could be killed'
    try: holder = json.loads(client.get_object(Bucket='lab-runs', Key='runs/killed/data.zarr/fragments/.connecto/lock')['Body'].read())
    except client.exceptions.NoSuchKey: holder = {}
    for _ in range(300):                    # the kernel (its own session) ends once it sees its parent gone: as in a killed pod
        try: os.kill(holder.get('pid', 0) or 2**22 + 1, 0); time.sleep(0.1)
        except ProcessLookupError: break
    r = connecto('pipeline', 'p.yaml', '--json', '--quiet', cwd=tmp_path, env=machine('pod-2'))
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads(r.stdout)['metrics']['fragments']
    assert m['blocks_skipped'] > 0 and m['blocks_done'] + m['blocks_skipped'] == 5 * 4 * 4, m
