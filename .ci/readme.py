"Write README.md from nbs/index.ipynb (what `nbdev_readme` does with Quarto, without it). `--check` fails if it differs."
import sys
from pathlib import Path
import nbformat

ROOT = Path(__file__).resolve().parent.parent

def render(nb_path=ROOT/'nbs/index.ipynb') -> str:
    "README text: markdown cells as they are, code cells as fenced Python."
    nb = nbformat.read(nb_path, as_version=4)
    parts = [c.source if c.cell_type == 'markdown' else f"```python\n{c.source}\n```" for c in nb.cells if c.source.strip()]
    return '\n\n'.join(parts).rstrip() + '\n'

if __name__ == '__main__':
    text, readme = render(), ROOT/'README.md'
    if '--check' in sys.argv:
        if readme.read_text() != text: sys.exit('README.md differs from nbs/index.ipynb: run python .ci/readme.py')
    else: readme.write_text(text)
