"""Run folders on an S3 object store, as Kubernetes Jobs without a shared volume use them: a real S3 API server
(moto's, on loopback) reached by s3fs, the stages run by `connecto pipeline` in subprocesses with separate local mirrors."""
import json, os, socket, time
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

# The output lock on S3: conditional writes (If-None-Match: * to create, If-Match: <ETag> to take over or renew), raced for real
# against moto's server (threaded: requests from many clients are handled concurrently). Moto refuses conditional PUTs that
# fail their precondition with 412, as S3 does.

RACER = r'''
import sys
from connecto.state import OutputBusy, OutputLock
lock = OutputLock(sys.argv[1])
lock.fs.ls('lab-runs')                                  # connected before the start signal
print('ready', flush=True); sys.stdin.readline()
try: lock.acquire(); print('won', flush=True)
except OutputBusy: print('busy', flush=True)
sys.stdin.readline()                                    # hold the lock until every racer has tried
'''

@pytest.fixture
def s3_here(s3, monkeypatch):
    "The moto S3 server of `s3`, reached by s3fs in this process; yields (environment, boto3 client)."
    import s3fs
    env, client = s3
    for k, v in env.items(): monkeypatch.setenv(k, v)
    s3fs.S3FileSystem.clear_instance_cache()
    yield env, client
    s3fs.S3FileSystem.clear_instance_cache()

def race_threads(url, n=16):
    "`n` threads acquire the lock of `url` at the same moment; returns (locks that won, number refused)."
    import threading
    from connecto.state import OutputBusy, OutputLock
    locks = [OutputLock(url) for _ in range(n)]
    locks[0].fs.ls('lab-runs')
    start, won, busy = threading.Barrier(n), [], []
    def take(lock):
        start.wait()
        try: won.append(lock.acquire())
        except OutputBusy: busy.append(lock)
    threads = [threading.Thread(target=take, args=(l,)) for l in locks]
    for t in threads: t.start()
    for t in threads: t.join()
    return won, len(busy)

def race_processes(url, env, n=4):
    "`n` processes acquire the lock of `url` at the same moment (after all have started and connected): their answers."
    import subprocess, sys
    ps = [subprocess.Popen([sys.executable, '-c', RACER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                           env={**os.environ, **env}) for _ in range(n)]
    try:
        assert all(p.stdout.readline().strip() == 'ready' for p in ps)
        for p in ps: p.stdin.write('go\n')
        for p in ps: p.stdin.flush()
        return sorted(p.stdout.readline().strip() for p in ps)
    finally:
        for p in ps: p.stdin.close(); p.wait(timeout=60)

def holder(client, name):
    return json.loads(client.get_object(Bucket='lab-runs', Key=f'locks/{name}.zarr/v/.connecto/lock')['Body'].read())

def test_lock_on_s3_taken_by_exactly_one_of_many(s3_here):
    "Runs starting together on one output: exactly one takes the lock, every other gets OutputBusy."
    env, client = s3_here
    for r in range(5):
        won, busy = race_threads(f's3://lab-runs/locks/threads-{r}.zarr/v')
        assert len(won) == 1 and busy == 15, (r, len(won), busy)
        assert holder(client, f'threads-{r}')['token'] == won[0]._fd['token']
    assert race_processes('s3://lab-runs/locks/processes.zarr/v', env) == ['busy'] * 3 + ['won']

def test_lapsed_lease_on_s3_taken_over_by_exactly_one(s3_here):
    "A lease its dead holder stopped renewing long ago: of the runs that race to take it over, exactly one does."
    env, client = s3_here
    dead = json.dumps({'pid': 1, 'host': 'pod-gone', 'time': time.time() - 3600, 'token': 'dead'}).encode()
    client.put_object(Bucket='lab-runs', Key='locks/lapsed-t.zarr/v/.connecto/lock', Body=dead)
    won, busy = race_threads('s3://lab-runs/locks/lapsed-t.zarr/v')
    assert len(won) == 1 and busy == 15 and holder(client, 'lapsed-t')['token'] == won[0]._fd['token']
    for r in range(5):                                  # two racers, as in a Job's retry and a second submission
        client.put_object(Bucket='lab-runs', Key=f'locks/lapsed-{r}.zarr/v/.connecto/lock', Body=dead)
        won, busy = race_threads(f's3://lab-runs/locks/lapsed-{r}.zarr/v', n=2)
        assert len(won) == 1 and busy == 1, (r, len(won), busy)
    client.put_object(Bucket='lab-runs', Key='locks/lapsed-p.zarr/v/.connecto/lock', Body=dead)
    assert race_processes('s3://lab-runs/locks/lapsed-p.zarr/v', env) == ['busy'] * 3 + ['won']

def test_lease_on_s3_renewed_and_taken_over_conditionally(s3_here):
    "The holder renews with If-Match; once its lease ran out another run takes it, and the old holder's renewal is refused."
    from connecto.state import OutputBusy, OutputLock
    env, client = s3_here
    url = 's3://lab-runs/locks/lease.zarr/v'
    a = OutputLock(url, lease_seconds=0.6).acquire()
    assert a.store is not None                          # the conditional path, not the best-effort one
    time.sleep(0.25); a.renew()
    assert holder(client, 'lease')['time'] == a._fd['time'] > time.time() - 0.2
    with pytest.raises(OutputBusy): OutputLock(url, lease_seconds=0.6).acquire()
    time.sleep(0.7)
    b = OutputLock(url, lease_seconds=0.6).acquire()    # a stopped renewing: b takes over
    with pytest.raises(OutputBusy, match='taken over'): a.renew()
    a.release()                                         # does not remove b's lock
    assert holder(client, 'lease')['token'] == b._fd['token']
    time.sleep(0.25); b.renew()
    assert holder(client, 'lease')['time'] == b._fd['time']
    b.release()
    OutputLock(url).acquire().release()
