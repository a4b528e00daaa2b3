"The nbdev project itself: the library matches the notebooks, notebooks are clean, docs process, README matches index.ipynb."
import shutil, subprocess, sys
from pathlib import Path
from conftest import ROOT

def run(cmd, cwd):
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, shell=True, timeout=600)
    assert res.returncode == 0, f'{cmd}: {res.stdout}\n{res.stderr}'
    return res

def copy_project(tmp_path):
    "The tracked files of the project, in a fresh git repository (so that `git diff` shows what a command changed)."
    (tmp_path/'shared').symlink_to(ROOT.parent/'shared')   # notebooks read ../shared/data beside the project
    tmp_path = tmp_path/'connecto'
    files = subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True).stdout.split()
    for f in files:
        (tmp_path/f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(ROOT/f, tmp_path/f, follow_symlinks=False)
    run('git init -q && git add -A && git -c user.email=t@t -c user.name=t commit -qm base', tmp_path)
    return tmp_path

def test_export_and_clean_change_nothing(tmp_path):
    d = copy_project(tmp_path)
    run('nbdev_export && nbdev_clean', d)
    diff = subprocess.run('git status --porcelain', cwd=d, shell=True, capture_output=True, text=True).stdout
    assert diff == '', f'nbdev_export/nbdev_clean change these files (run them and commit):\n{diff}'

def test_docs_process_and_readme(tmp_path):
    d = copy_project(tmp_path)
    # nbdev_proc_nbs insists on installing Quarto first; its processing step alone runs here (Quarto renders in CI's docs workflow)
    run(f'{sys.executable} -c "from nbdev.serve import proc_nbs; proc_nbs(n_workers=1)"', d)
    assert (d/'_proc/01_volume.ipynb').exists() and (d/'_proc/_quarto.yml').exists()
    run(f'{sys.executable} .ci/readme.py --check', d)

def test_parameters_tag_survives_clean(tmp_path):
    "nbdev_clean keeps cell tags (papermill's `parameters`) because settings.ini allows them."
    import nbformat
    d = copy_project(tmp_path)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1', metadata={'tags': ['parameters']})])
    nbformat.write(nb, d/'nbs/zz_tmp.ipynb')
    run('nbdev_clean --fname nbs/zz_tmp.ipynb', d)
    assert nbformat.read(d/'nbs/zz_tmp.ipynb', 4).cells[0].metadata.get('tags') == ['parameters']
