"The boundary model through the CLI: connecto train on the gala crop, then connecto predict with several block shapes and workers."
import json
import numpy as np
import pytest
from conftest import connecto, tree_digest

def gala(data, name): return f"{data/'fibsem-gala'/name}:stack"

CONFIG = """model: {features: 4, factors: [[1, 2, 2], [1, 2, 2]]}
output_shape: [4, 24, 24]
batch_size: 2
learning_rate: 0.003
val_interval: 10
checkpoint_interval: 10
"""

@pytest.fixture(scope='module')
def trained(data, tmp_path_factory):
    "A checkpoint from `connecto train` (20 iterations) and its JSON summary."
    d = tmp_path_factory.mktemp('train')
    (d/'train.yaml').write_text(CONFIG)
    r = connecto('train', '--raw', gala(data, 'train-image.h5'), '--gt', gala(data, 'train-gt.lzf.h5'), '--out', d/'run',
                 '--iterations', 20, '--config', d/'train.yaml', '--json', '--quiet')
    assert r.returncode == 0, r.stderr
    return d, json.loads(r.stdout)

def test_train_summary_and_resume(data, trained):
    d, s = trained
    assert {'checkpoint', 'iterations', 'train_loss', 'val_loss', 'mlflow_run_id'} <= set(s)
    assert s['iterations'] == 20 and np.isfinite(s['train_loss']) and np.isfinite(s['val_loss'])
    r = connecto('train', '--raw', gala(data, 'train-image.h5'), '--gt', gala(data, 'train-gt.lzf.h5'), '--out', d/'run',
                 '--iterations', 30, '--config', d/'train.yaml', '--json', '--quiet')
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert again['resumed_from'] == 20 and again['iterations'] == 30 and again['mlflow_run_id'] == s['mlflow_run_id']

def test_predict_is_seamless_across_block_shapes_and_workers(data, trained, tmp_path):
    _, s = trained
    outs = {}
    for name, extra in {'one': ('--block-shape', '50,100,200'), 'many': ('--block-shape', '13,37,64', '--workers', 2)}.items():
        r = connecto('predict', '--raw', gala(data, 'train-image.h5'), '--model', s['checkpoint'], '--out', tmp_path/f'p.zarr/{name}',
                     '--json', '--quiet', *extra)
        assert r.returncode == 0, r.stderr
        from connecto.volume import Volume
        outs[name] = Volume(str(tmp_path/f'p.zarr/{name}'))[...]
    assert outs['one'].shape == (3, 50, 100, 200) and outs['one'].dtype == np.float32
    assert np.abs(outs['one'] - outs['many']).max() < 1e-5
    assert 0 <= outs['one'].min() and outs['one'].max() <= 1

def test_bad_inputs_exit_2_and_outputs_kept(data, trained, tmp_path):
    d, s = trained
    ok = connecto('predict', '--raw', gala(data, 'train-image.h5'), '--model', s['checkpoint'], '--out', tmp_path/'ok.zarr/p', '--quiet')
    assert ok.returncode == 0, ok.stderr
    before = tree_digest(tmp_path/'ok.zarr')
    from connecto.volume import from_array
    from_array(np.zeros((50, 100, 200), np.uint32), str(tmp_path/'e.zarr/gt'))
    from_array(np.ones((50, 100, 100), np.uint32), str(tmp_path/'s.zarr/gt'))
    (tmp_path/'broken.pt').write_bytes(b'\x00' * 64)
    train = lambda gt: connecto('train', '--raw', gala(data, 'train-image.h5'), '--gt', gt, '--out', tmp_path/'x', '--iterations', 1, '--quiet')
    cases = {
        'shapes differ': train(tmp_path/'s.zarr/gt'),
        'no labels': train(tmp_path/'e.zarr/gt'),
        'corrupt model': connecto('predict', '--raw', gala(data, 'train-image.h5'), '--model', tmp_path/'broken.pt', '--out',
                                  tmp_path/'ok.zarr/p', '--quiet'),
        'unknown device': connecto('predict', '--raw', gala(data, 'train-image.h5'), '--model', s['checkpoint'], '--out',
                                   tmp_path/'ok.zarr/p', '--device', 'tpu', '--quiet'),
        'hpu missing': connecto('predict', '--raw', gala(data, 'train-image.h5'), '--model', s['checkpoint'], '--out',
                                tmp_path/'ok.zarr/p', '--device', 'hpu', '--quiet'),
    }
    for what, r in cases.items():
        assert r.returncode == 2, (what, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, (what, r.stderr)
    assert 'habana' in cases['hpu missing'].stderr and 'not a readable checkpoint' in cases['corrupt model'].stderr
    assert tree_digest(tmp_path/'ok.zarr') == before

def test_ddp_on_two_cpu_processes(data, tmp_path):
    "torchrun with 2 processes (gloo): both train in step, rank 0 writes the checkpoint."
    import socket, subprocess, sys
    (tmp_path/'train.yaml').write_text(CONFIG)
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    r = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
                        '--master_port', str(port), '-m', 'connecto.cli', 'train', '--raw', gala(data, 'train-image.h5'),
                        '--gt', gala(data, 'train-gt.lzf.h5'), '--out', str(tmp_path/'run'), '--iterations', '6',
                        '--config', str(tmp_path/'train.yaml'), '--json', '--quiet'], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    reports = [json.loads(l) for l in r.stdout.splitlines() if l.startswith('{')]
    assert len(reports) == 2 and all(x['iterations'] == 6 for x in reports)
    from connecto.unet import load_checkpoint
    model, ck = load_checkpoint(str(tmp_path/'run/checkpoints/last.pt'))
    assert ck['iteration'] == 6 and ck['train_config']['batch_size'] == 2
