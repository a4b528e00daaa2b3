"The nbdev project itself: the library matches the notebooks, notebooks are clean, docs process, README matches index.ipynb."
import ast, shutil, subprocess, sys
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

def import_graph(pkg:Path)->dict:
    "{module: modules of the package it imports}, from every `import` in each `pkg/*.py`, at module level or inside functions."
    import ast
    mods = {p.stem for p in pkg.glob('*.py')}
    name = lambda m: m if m in mods else '__init__'                  # `from connecto import __version__` is the package itself
    graph = {}
    for p in sorted(pkg.glob('*.py')):
        deps = set()
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.Import):
                deps |= {name(a.name.split('.')[1]) if '.' in a.name else '__init__' for a in node.names
                         if a.name.split('.')[0] == pkg.name}
            elif isinstance(node, ast.ImportFrom):
                if node.level > 1 or not (node.level or (node.module or '').split('.')[0] == pkg.name): continue
                parts = (node.module or '').split('.')[0 if node.level else 1:]
                if parts and parts[0]: deps.add(name(parts[0]))
                else: deps |= {name(a.name) for a in node.names}     # `from . import x`, `from connecto import x`
        graph[p.stem] = deps - {p.stem}
    return graph

def import_cycle(graph:dict)->list|None:
    "A cycle of `graph` as [a, b, ..., a], or None."
    state, stack = {}, []
    def visit(m):
        state[m] = 'open'; stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 'open': return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)): return found
        state[m] = 'done'; stack.pop()
    for m in sorted(graph):
        if m not in state and (found := visit(m)): return found

def test_no_import_cycles():
    "The modules of connecto import each other in one direction only (function-level imports count too)."
    cycle = import_cycle(import_graph(ROOT/'connecto'))
    assert cycle is None, f"connecto's modules import each other in a circle: {' -> '.join(cycle)}"

def _defined_privately(tree)->set:
    "Private names a module defines: functions, classes, module globals and attributes it assigns (`self._x = ...`)."
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): out.add(n.name)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store): out.add(n.id)
        elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store): out.add(n.attr)
        elif isinstance(n, ast.arg): out.add(n.arg)
    return {x for x in out if x.startswith('_') and not x.startswith('__')}

def private_uses(lib)->list:
    "Places where a module of `lib` uses a private name of another: imports it, or reads an attribute only another module defines."
    trees = {p.stem: ast.parse(p.read_text()) for p in sorted(Path(lib).glob('*.py')) if p.name != '_modidx.py'}
    own = {m: _defined_privately(t) for m, t in trees.items()}
    out = []
    for m, t in trees.items():
        for n in ast.walk(t):
            if isinstance(n, ast.ImportFrom) and (n.level or (n.module or '').split('.')[0] == 'connecto'):
                out += [f"{m}: imports {a.name} from {n.module}" for a in n.names if a.name.startswith('_') and not a.name.startswith('__')]
            elif isinstance(n, ast.Attribute) and n.attr.startswith('_') and not n.attr.startswith('__') and n.attr not in own[m]:
                if any(n.attr in own[o] for o in trees if o != m): out.append(f"{m}: line {n.lineno} reads .{n.attr}")
    return out

def test_no_module_uses_another_modules_private_names(tmp_path):
    assert private_uses(ROOT/'connecto') == []
    (tmp_path/'a.py').write_text('def _helper(): pass\nclass V:\n    def __init__(self): self._r = 1\n')
    (tmp_path/'b.py').write_text('from .a import _helper\ndef f(v): return v._r\n')
    assert private_uses(tmp_path) == ['b: imports _helper from a', 'b: line 2 reads ._r']
