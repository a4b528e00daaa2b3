"The engine under real faults: a worker process killed, the whole run killed, flaky and broken blocks, a concurrent run, /metrics scraped."
import json, os, signal, subprocess, sys, threading, time, urllib.request
from pathlib import Path
import cloudpickle, numpy as np, psutil, pytest
from distributed import Client, LocalCluster
from prometheus_client.parser import text_string_to_metric_families
import kernels
from connecto.blocks import BlockGrid
from connecto.config import WorkFailed
from connecto.config import Config
from connecto.engine import Task, run_blockwise
from connecto.state import Ledger
from connecto.telemetry import serve_metrics
from connecto.volume import Volume, create_volume
from conftest import ROOT, connecto, tree_digest

cloudpickle.register_pickle_by_value(kernels)    # worker processes do not have tests/ on their path

def make_out(tmp_path, shape=(40, 64, 64), chunks=(10, 16, 16), name='out'):
    return create_volume(str(tmp_path/f'{name}.zarr/v'), shape, 'uint16', chunks=chunks)

def test_worker_killed_mid_run(tmp_path):
    out = make_out(tmp_path)
    grid = BlockGrid(out.shape, (10, 16, 16))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        assert len(pids) == 2
        killed = threading.Event()
        def killer():
            while len(list(tmp_path.glob('marks/tried-*'))) < 12: time.sleep(0.05)
            os.kill(pids[0], signal.SIGKILL); killed.set()
        (tmp_path/'marks').mkdir()
        t = threading.Thread(target=killer); t.start()
        report = run_blockwise(Task('fill', grid, out.spec, kernels.fill_block, dict(dst=out, marks=str(tmp_path/'marks'), sleep=0.05)),
                               Config(scheduler_address=cluster.scheduler_address), progress=False)
        t.join()
    assert killed.is_set() and (not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == psutil.STATUS_ZOMBIE)
    assert report.blocks_done == len(grid) == 64 and report.blocks_failed == 0
    assert np.array_equal(Volume(out.spec)[...], kernels.expected_fill(grid, out.shape))

def test_transient_failures_retried(tmp_path):
    out = make_out(tmp_path)
    grid = BlockGrid(out.shape, (10, 16, 16))
    flaky = tuple(range(0, len(grid), 10))          # 10% of the blocks fail once
    (tmp_path/'marks').mkdir()
    report = run_blockwise(Task('fill', grid, out.spec, kernels.fill_block, dict(dst=out, marks=str(tmp_path/'marks'), fail_once=flaky)),
                           Config(num_workers=2, retry_backoff=0.05), progress=False)
    assert report.blocks_done == len(grid) and report.blocks_retried == len(flaky) and report.blocks_failed == 0
    assert np.array_equal(Volume(out.spec)[...], kernels.expected_fill(grid, out.shape))

def test_permanent_failure_named_others_done(tmp_path):
    out = make_out(tmp_path)
    grid = BlockGrid(out.shape, (10, 16, 16))
    (tmp_path/'marks').mkdir()
    with pytest.raises(WorkFailed) as e:
        run_blockwise(Task('fill', grid, out.spec, kernels.fill_block, dict(dst=out, marks=str(tmp_path/'marks'), fail_always=(7, 30))),
                      Config(num_workers=2, retry_backoff=0.05, max_retries=2), progress=False)
    r = e.value.report
    assert r.failed_blocks == [7, 30] and 'blocks 7, 30' in str(e.value)
    assert r.blocks_done == len(grid) - 2
    done = Ledger(out.spec, r.key, len(grid)).load()
    assert done.sum() == len(grid) - 2 and not done[7] and not done[30]
    exp, got = kernels.expected_fill(grid, out.shape), Volume(out.spec)[...]
    for b in grid: assert np.array_equal(got[b.core.slices], 0 * exp[b.core.slices] if b.id in (7, 30) else exp[b.core.slices])

def test_cli_permanent_failure_exit_1(data, tmp_path):
    "A broken store path under the output: the blocks that write there fail for good, exit 1 names them, the rest are done."
    dst = tmp_path/'o.zarr/raw'
    (dst/'s0/c').mkdir(parents=True)
    (dst/'s0/c/1').write_text('not a folder')         # chunks with z index 1 cannot be written
    res = connecto('ingest', f'{data}/fibsem-gala/train-image.h5:stack', dst, '--block-shape', '25,50,100', '--json', '--quiet')
    assert res.returncode == 1, res.stderr
    s = json.loads(res.stdout)
    assert sorted(s['failed_blocks']) == [4, 5, 6, 7] and s['blocks_done'] == 4
    assert res.stderr.strip().splitlines()[-1].startswith('connecto: failed: 4 of 8 blocks failed') and 'blocks 4, 5, 6, 7' in res.stderr
    raw = Volume(f'{data}/fibsem-gala/train-image.h5:stack')[...]
    assert np.array_equal(Volume(dst)[:25], raw[:25])
    (dst/'s0/c/1').unlink()                             # fix the store and re-run: only the failed blocks run
    s2 = json.loads(connecto('ingest', f'{data}/fibsem-gala/train-image.h5:stack', dst, '--block-shape', '25,50,100', '--json', '--quiet').stdout)
    assert (s2['blocks_skipped'], s2['blocks_done']) == (4, 4)
    assert np.array_equal(Volume(dst)[...], raw)

SLOW = 'compression_level: 12\ncheckpoint_interval: 2\n'

def start_ingest(src, dst, cfg):
    return subprocess.Popen([sys.executable, '-m', 'connecto.cli', 'ingest', str(src), str(dst), '--block-shape', '32,256,256',
                             '--config', str(cfg), '--quiet', '--json'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)

def wait_for_segments(dst, n=2, timeout=120):
    t = time.time()
    while time.time() - t < timeout:
        if len(list(Path(dst).glob('.connecto/ledger-*/*.u64'))) >= n: return
        time.sleep(0.05)
    raise AssertionError('the run wrote no ledger segments')

def test_kill_whole_run_then_resume_byte_identical(big_npy, tmp_path):
    cfg = tmp_path/'c.yaml'; cfg.write_text(SLOW)
    ref = tmp_path/'ref.zarr/raw'
    assert connecto('ingest', big_npy, ref, '--block-shape', '32,256,256', '--config', cfg, '--quiet').returncode == 0
    dst = tmp_path/'run.zarr/raw'
    p = start_ingest(big_npy, dst, cfg)
    wait_for_segments(dst)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL
    assert not list(Path(dst).glob('.connecto/ledger-*/complete.json'))
    res = connecto('ingest', big_npy, dst, '--block-shape', '32,256,256', '--config', cfg, '--quiet', '--json')
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s['blocks_skipped'] > 0 and s['blocks_done'] > 0 and s['blocks_skipped'] + s['blocks_done'] == s['blocks_total'] == 128
    assert tree_digest(dst) == tree_digest(ref)

def test_second_concurrent_run_refused(big_npy, tmp_path):
    cfg = tmp_path/'c.yaml'; cfg.write_text(SLOW)
    dst = tmp_path/'run.zarr/raw'
    p = start_ingest(big_npy, dst, cfg)
    try:
        wait_for_segments(dst, 1)
        res = connecto('ingest', big_npy, dst, '--block-shape', '32,256,256', '--config', cfg, '--quiet')
        assert res.returncode == 2 and 'is being written by another run' in res.stderr, res.stderr
        assert p.poll() is None                       # the first run goes on
    finally:
        os.killpg(p.pid, signal.SIGKILL); p.wait()

def scrape(port):
    text = urllib.request.urlopen(f'http://127.0.0.1:{port}/metrics', timeout=5).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}

def test_metrics_scraped_during_run_match_report(tmp_path):
    out = make_out(tmp_path)
    grid = BlockGrid(out.shape, (10, 16, 16))
    (tmp_path/'marks').mkdir()
    srv = serve_metrics(0)
    stage = (('stage', 'metrics-test'),)
    result, scrapes = {}, []
    def work():
        try: run_blockwise(Task('metrics-test', grid, out.spec, kernels.fill_block,
                                dict(dst=out, marks=str(tmp_path/'marks'), fail_once=(3, 4), fail_always=(9,), sleep=0.05)),
                           Config(retry_backoff=0.05, max_retries=1), progress=False)
        except WorkFailed as e: result['report'] = e.report
    t = threading.Thread(target=work); t.start()
    while t.is_alive():
        scrapes.append(scrape(srv.server_port).get(('connectomics_chunks_processed_total', stage), 0.)); time.sleep(0.1)
    t.join()
    r, m = result['report'], scrape(srv.server_port)
    srv.shutdown()
    assert any(0 < s < r.blocks_done for s in scrapes), scrapes           # seen mid-run over HTTP
    assert m[('connectomics_chunks_processed_total', stage)] == r.blocks_done == len(grid) - 1
    assert m[('connectomics_processing_errors_total', stage)] == 2 + 2     # 2 transient + block 9 twice
    assert m[('connectomics_chunk_retries_total', stage)] == 3
    assert m[('connectomics_processing_latency_seconds_count', stage)] == r.blocks_done
    assert m[('connectomics_throughput_chunks_per_second', stage)] > 0
    assert m[('connectomics_memory_usage_bytes', ())] > 0

def test_cluster_without_workers_fails_instead_of_hanging(tmp_path):
    out = make_out(tmp_path)
    grid = BlockGrid(out.shape, (10, 16, 16))
    (tmp_path/'marks').mkdir()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        def retire():
            while len(list(tmp_path.glob('marks/tried-*'))) < 5: time.sleep(0.05)
            cluster.scale(0)                                  # every worker leaves; none comes back
        t = threading.Thread(target=retire); t.start()
        t0 = time.monotonic()
        with pytest.raises(RuntimeError, match='no workers for 3 s'):
            run_blockwise(Task('fill', grid, out.spec, kernels.fill_block, dict(dst=out, marks=str(tmp_path/'marks'), sleep=0.1)),
                          Config(scheduler_address=cluster.scheduler_address, worker_timeout=3), progress=False)
        t.join()
    assert time.monotonic() - t0 < 60
    key = next(p.name for p in Path(out.spec, '.connecto').glob('ledger-*')).removeprefix('ledger-')
    done = Ledger(out.spec, key, len(grid)).load()
    assert 0 < done.sum() < len(grid)                         # the finished blocks are kept for the re-run
