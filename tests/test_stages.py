"Each stage declared once: its notebook, its command line and its library function agree with the declaration."
import nbformat, pytest
from dataclasses import replace
from conftest import ROOT
from connecto.cli import COMMANDS, main
from connecto.commands import STAGES
from connecto.stage import disagreements

@pytest.mark.parametrize('name', list(STAGES))
def test_stage_notebook_cli_and_library_agree(name):
    assert disagreements(STAGES[name], ROOT/f'nbs/pipeline/{name}.ipynb') == []

@pytest.mark.parametrize('name', [n for n, c in COMMANDS.items() if not c.notebook])
def test_command_agrees_with_its_library(name):
    assert disagreements(COMMANDS[name]) == []

def test_a_disagreement_is_found(tmp_path):
    "A default changed in the notebook, in the library or on the command line alone fails the check."
    s, nb = STAGES['fragments'], ROOT/'nbs/pipeline/fragments.ipynb'
    book = nbformat.read(nb, 4)
    cell = next(c for c in book.cells if 'parameters' in c.metadata.get('tags', []))
    cell.source = cell.source.replace('halo: int = 8', 'halo: int = 16')
    nbformat.write(book, tmp_path/'fragments.ipynb')
    assert any('parameters cell differs' in d for d in disagreements(s, tmp_path/'fragments.ipynb'))
    halo16 = [replace(p, default=16) if p.name == 'halo' else p for p in s.params]
    assert 'fragments: halo defaults to 16, the library fragments() to 8' in disagreements(replace(s, params=halo16))
    ghost = [*s.params, replace(s['halo'], name='ghost')]
    assert any('ghost is never used' in d for d in disagreements(replace(s, params=ghost), nb))

def test_run_pipeline_and_cli_refuse_the_same_values(capsys):
    "Out-of-range values are refused by the command, by `connecto run` and by `connecto submit` before any work."
    for argv in (['agglomerate', '--fragments', 'f.zarr/f', '--boundaries', 'b.npy', '--out', 'o.zarr/s', '--threshold', '5'],
                 ['run', 'agglomerate', '-p', 'threshold', '5'],
                 ['submit', 'agglomerate', '--image', 'x:1', '--dry-run', '-p', 'threshold', '5']):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and 'threshold' in err[0] and 'must be >= 0 and <= 1' in err[0], err

def test_downsample_command_and_stage_notebook(data, tmp_path):
    "The stage added on the declared shape: `connecto downsample` and `connecto run downsample` give the same volume."
    import json, subprocess, numpy as np
    from connecto.volume import Volume
    from connecto.downsample import reduce_region
    gt = f"{data}/fibsem-gala/train-gt.lzf.h5:stack"
    cli = subprocess.run(['connecto', 'downsample', '--src', gt, '--dst', str(tmp_path/'d.zarr/gt-s1'), '--block-shape', '16,32,32',
                          '--factors', '1,2,2', '--json', '--quiet'], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)['blocks_done'] == 4 * 2 * 4
    out = Volume(str(tmp_path/'d.zarr/gt-s1'))
    assert np.array_equal(out[...], reduce_region(Volume(gt)[...], (1, 2, 2), 'mode')) and out.voxel_size[1] == 2 * Volume(gt).voxel_size[1]
    run = subprocess.run(['connecto', 'run', 'downsample', '-p', 'src', gt, '-p', 'dst', str(tmp_path/'n.zarr/gt-s1'), '-p', 'block_shape',
                          '16,32,32', '--run-dir', str(tmp_path/'run'), '--quiet'], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert np.array_equal(Volume(str(tmp_path/'n.zarr/gt-s1'))[...], out[...])
    bad = subprocess.run(['connecto', 'downsample', '--src', gt, '--dst', str(tmp_path/'x.zarr/s'), '--factors', '1,0,2'], capture_output=True, text=True)
    assert bad.returncode == 2 and '--factors' in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
