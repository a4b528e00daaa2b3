"""Execute notebooks as `nbdev_test` does (cells flagged slow, gpu, hpu or k8s skipped) and keep the outputs of their example
cells in the notebooks, so that the docs and GitHub show what each function does. Export cells keep no output.
    python .ci/outputs.py nbs/00_config.ipynb nbs/01_volume.ipynb ...    (then nbdev_clean, which keeps outputs)"""
import os, sys, time
from pathlib import Path
import nbformat
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory
from nbdev.process import NBProcessor
from nbdev.frontmatter import FrontmatterProc
from nbdev.config import get_config

def run(fn:Path)->bool:
    "Execute `fn` and write the outputs of its non-export cells back into it; False (and the error) when a cell fails."
    flags = set(get_config().tst_flags.split())
    nb = NBProcessor(fn, procs=FrontmatterProc, process=True).nb
    def skip(cell):
        if cell.cell_type != 'code' or 'nbdev_export' + '(' in cell.source: return True
        direc = getattr(cell, 'directives_', {}) or {}
        if direc.get('eval:', [''])[0].lower() == 'false': return True
        return flags & direc.keys()
    os.environ['IN_TEST'] = '1'
    k = CaptureShell(fn)
    try:
        with working_directory(fn.parent): k.run_all(nb, exc_stop=True, preproc=skip)
    except Exception:
        sys.stderr.write(k.prettytb(fname=fn) + '\n'); return False
    outputs = {c.get('id'): c.get('outputs', []) for c in nb.cells if c.cell_type == 'code'}
    book = nbformat.read(fn, as_version=4)
    for c in book.cells:
        if c.cell_type != 'code': continue
        exported = c.source.lstrip().startswith('#| export') or c.source.lstrip().startswith('#|export')
        c.outputs = [] if exported else [nbformat.from_dict(o) for o in outputs.get(c.get('id'), []) if o.get('output_type') != 'error']
        c.execution_count = None
    nbformat.write(book, fn)
    return True

if __name__ == '__main__':
    bad = []
    for f in sys.argv[1:]:
        t = time.time(); ok = run(Path(f).resolve()); print(f"{f}: {'ok' if ok else 'FAILED'} in {time.time() - t:.0f} s", flush=True)
        if not ok: bad.append(f)
    sys.exit(1 if bad else 0)
