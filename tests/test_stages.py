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
