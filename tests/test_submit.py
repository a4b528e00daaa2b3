"""`connecto submit` without --dry-run: the official Kubernetes client, configured from a kubeconfig, sends the manifests to an
HTTP endpoint on loopback that records the API requests and answers as the API server does (201 with the object, or a Status
error). No real API server runs here (no kind, no Docker): this checks the requests the client makes and our handling of the
answers, not scheduling."""
import json, threading, yaml
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import pytest
from conftest import connecto

class Recorder(BaseHTTPRequestHandler):
    "Answers every POST with 201 and the object, or with the Status of `server.refuse[path]`; records (method, path, body, auth)."
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        self.server.calls.append((self.command, self.path, body, self.headers.get('Authorization')))
        code, msg = self.server.refuse.get(self.path, (201, None))
        out = body if code == 201 else {'kind': 'Status', 'apiVersion': 'v1', 'status': 'Failure', 'message': msg, 'code': code}
        data = json.dumps(out).encode()
        self.send_response(code); self.send_header('Content-Type', 'application/json'); self.send_header('Content-Length', str(len(data)))
        self.end_headers(); self.wfile.write(data)
    def log_message(self, *a): pass

@pytest.fixture
def api(tmp_path):
    server = ThreadingHTTPServer(('127.0.0.1', 0), Recorder); server.calls, server.refuse = [], {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cfg = {'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'lab',
           'clusters': [{'name': 'lab', 'cluster': {'server': f'http://127.0.0.1:{server.server_address[1]}'}}],
           'users': [{'name': 'ops', 'user': {'token': 'sekret'}}],
           'contexts': [{'name': 'lab', 'context': {'cluster': 'lab', 'user': 'ops'}}]}
    (tmp_path/'kubeconfig').write_text(yaml.safe_dump(cfg))
    yield server, {'KUBECONFIG': str(tmp_path/'kubeconfig')}
    server.shutdown()

def submit(tmp_path, env, *args):
    import os
    return connecto('submit', *args, '--image', 'ghcr.io/connecto/connecto:0.1.0', '--run-id', 'r7', '--namespace', 'em', '--quiet',
                    cwd=tmp_path, env={**os.environ, **env})

def test_submit_creates_daskcluster_then_job(tmp_path, api):
    server, env = api
    r = submit(tmp_path, env, 'fragments', '-p', 'block_shape', '64,256,256', '--dask-workers', '3', '--json')
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    dry = json.loads(submit(tmp_path, env, 'fragments', '-p', 'block_shape', '64,256,256', '--dask-workers', '3', '--json',
                            '--dry-run').stdout)['manifests']
    assert [(m, p) for m, p, _, _ in server.calls] == [('POST', '/apis/kubernetes.dask.org/v1/namespaces/em/daskclusters'),
                                                       ('POST', '/apis/batch/v1/namespaces/em/jobs')]
    assert [b for _, _, b, _ in server.calls] == dry == out['manifests']          # what --dry-run prints is what is sent
    assert {a for *_, a in server.calls} == {'Bearer sekret'}
    assert out['created'] == ['DaskCluster em/connecto-fragments-r7-dask', 'Job em/connecto-fragments-r7']

def test_refusals_are_one_line_with_the_fix(tmp_path, api):
    server, env = api
    server.refuse['/apis/batch/v1/namespaces/em/jobs'] = (409, 'jobs.batch "connecto-predict-r7" already exists')
    r = submit(tmp_path, env, 'predict', '--gpus', '1')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'already exists' in r.stderr and '--run-id' in r.stderr, r.stderr
    server.refuse['/apis/batch/v1/namespaces/em/jobs'] = (403, 'jobs.batch is forbidden: User "ops" cannot create resource "jobs"')
    r = submit(tmp_path, env, 'fragments', '--dask-workers', '2')
    assert r.returncode == 2 and 'forbidden' in r.stderr and 'DaskCluster em/connecto-fragments-r7-dask was created' in r.stderr, r.stderr
    server.refuse['/apis/kubernetes.dask.org/v1/namespaces/em/daskclusters'] = (404, 'the server could not find the requested resource')
    r = submit(tmp_path, env, 'fragments', '--dask-workers', '2')
    assert r.returncode == 2 and 'dask-kubernetes operator' in r.stderr, r.stderr
    server.shutdown(); server.server_close()                                      # nothing listening any more
    r = submit(tmp_path, env, 'evaluate')
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and 'cannot reach the Kubernetes API' in r.stderr, r.stderr
