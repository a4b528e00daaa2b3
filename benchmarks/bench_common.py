"""Helpers shared by the benchmark scripts: worker import path, machine info, RESULTS.md sections, RSS sampling."""
from __future__ import annotations
import os, re, shutil, subprocess, sys, threading, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / 'RESULTS.md'

def setup_workers_path():
    "Make bench_kernels importable in Dask worker processes (PYTHONPATH for spawned workers + pickle by value)."
    os.environ['PYTHONPATH'] = os.pathsep.join([str(HERE)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
    if str(HERE) not in sys.path: sys.path.insert(0, str(HERE))
    import cloudpickle, bench_kernels
    cloudpickle.register_pickle_by_value(bench_kernels)
    return bench_kernels

def machine() -> str:
    import psutil
    cpu = ''
    try: cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except Exception: pass
    return f"nproc={os.cpu_count()}, RAM={psutil.virtual_memory().total / 2**30:.1f} GiB, CPU: {cpu or '?'}"

def today() -> str:
    return subprocess.run(['date'], capture_output=True, text=True).stdout.strip()

def command() -> str:
    return 'python ' + ' '.join([os.path.relpath(sys.argv[0], HERE.parent)] + sys.argv[1:])

def bench_parser(doc: str, workdir: str, json_out) :
    "An argument parser with the options every results-file benchmark takes: --workdir, --json, --from-json."
    import argparse
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--workdir', default=workdir, help='scratch folder (deleted at the end)')
    ap.add_argument('--json', default=str(json_out), help='where the raw results go')
    ap.add_argument('--from-json', metavar='FILE', help='only print the Markdown of a results file written before')
    return ap

def finish(res: dict, json_path, markdown, workdir):
    "Write the raw results to `json_path`, print their Markdown section, delete the scratch `workdir`."
    import json
    Path(json_path).parent.mkdir(parents=True, exist_ok=True)
    Path(json_path).write_text(json.dumps(res, indent=1, default=str))
    print(markdown(res))
    rmtree(workdir)

def fresh_dir(path) -> Path:
    "An empty folder at `path`."
    p = Path(path); rmtree(p); p.mkdir(parents=True)
    return p

def versions() -> str:
    import importlib.metadata as md
    names = ['connecto', 'dask', 'distributed', 'zarr', 'numcodecs', 'numpy', 'scipy', 'tensorstore']
    out = []
    for n in names:
        try: out.append(f"{n} {md.version(n)}")
        except Exception: pass
    return ', '.join(out)

def section_head(name: str, title: str, res: dict, machine_note: str = '') -> str:
    "The opening of a RESULTS.md section from a results dict: marker, title, date, machine, command."
    return (f"<!-- BEGIN {name} -->\n## {title}\n\n- date: {res['date']}\n- machine: {res['machine']}{machine_note}\n"
            f"- command: `{res['command']}`\n\n")

def update_results(name: str, title: str, body: str):
    "Replace (or append) the section `name` of RESULTS.md."
    begin, end = f'<!-- BEGIN {name} -->', f'<!-- END {name} -->'
    head = (f"{begin}\n## {title}\n\n- date: {today()}\n- machine: {machine()}\n- versions: {versions()}\n"
            f"- command: `{command()}`\n\n{body.strip()}\n{end}\n")
    text = RESULTS.read_text() if RESULTS.exists() else '# connecto benchmark results\n\nWritten by the scripts in this folder (see README.md); each section is replaced when its script runs again.\n\n'
    if begin in text:
        text = re.sub(re.escape(begin) + '.*?' + re.escape(end) + r'\n?', lambda m: head, text, flags=re.S)
    else:
        text = text.rstrip('\n') + '\n\n' + head
    RESULTS.write_text(text)
    print(f"updated {RESULTS} section '{name}'")

def rmtree(p):
    shutil.rmtree(p, ignore_errors=True)

def du(p) -> int:
    "Bytes used by the files under p."
    return sum(f.stat().st_size for f in Path(p).rglob('*') if f.is_file())

def median(xs):
    xs = sorted(xs); n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])

def _proc_status(pid):
    "RssAnon, RssFile, RssShmem in bytes from /proc/pid/status (0 if gone)."
    out = {'RssAnon': 0, 'RssFile': 0, 'RssShmem': 0}
    try:
        for line in open(f'/proc/{pid}/status'):
            k = line.split(':', 1)[0]
            if k in out: out[k] = int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError): pass
    return out

class TreeRSS:
    """Samples the RSS of this process and all its descendants every `interval` s in a thread.
    Keeps the peak of the summed total RSS and of the summed anonymous RSS (RssAnon: heap, not file-backed pages)."""
    def __init__(self, interval=0.2):
        self.interval, self.peak, self.peak_anon, self.peak_file, self.samples = interval, 0, 0, 0, 0
        self.peak_procs = 0
        self._stop = threading.Event()
    def _sample(self):
        import psutil
        me = psutil.Process()
        procs = [me] + me.children(recursive=True)
        tot = anon = fil = 0
        for p in procs:
            s = _proc_status(p.pid)
            tot += s['RssAnon'] + s['RssFile'] + s['RssShmem']; anon += s['RssAnon']; fil += s['RssFile'] + s['RssShmem']
        if tot > self.peak: self.peak, self.peak_procs = tot, len(procs)
        self.peak_anon, self.peak_file = max(self.peak_anon, anon), max(self.peak_file, fil)
        self.samples += 1
    def _loop(self):
        while not self._stop.is_set():
            self._sample(); self._stop.wait(self.interval)
    def __enter__(self):
        self._t = threading.Thread(target=self._loop, daemon=True); self._t.start(); return self
    def __exit__(self, *exc):
        self._stop.set(); self._t.join(); self._sample()

def gib(b): return b / 2**30

def _busy_seconds():
    "CPU seconds spent busy by the whole machine (all cores) since boot, from /proc/stat."
    v = [int(x) for x in open('/proc/stat').readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq = v[:7]
    steal = v[7] if len(v) > 7 else 0
    return (user + nice + system + irq + softirq + steal) / os.sysconf('SC_CLK_TCK')

def _own_seconds():
    "CPU seconds of this process, its reaped children and its live descendants."
    import psutil
    t = os.times()
    s = t.user + t.system + t.children_user + t.children_system
    for p in psutil.Process().children(recursive=True):
        try: c = p.cpu_times(); s += c.user + c.system
        except psutil.Error: pass
    return s

class Contention:
    """CPU time used by *other* processes on the machine while the block runs (machine busy time minus our own
    process tree's), so that results taken under foreign load can be flagged. `share` = foreign CPU-s / (wall * cores)."""
    def __enter__(self):
        self.w0, self.b0, self.o0 = time.perf_counter(), _busy_seconds(), _own_seconds(); return self
    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w0
        self.own = _own_seconds() - self.o0
        self.foreign = max(0., (_busy_seconds() - self.b0) - self.own)
        self.share = self.foreign / (self.wall * os.cpu_count()) if self.wall else 0.

def load_note(conts) -> str:
    "A line for RESULTS.md about foreign CPU load during the timed runs."
    if not conts: return ''
    sh = [c.share for c in conts]
    worst = max(sh)
    msg = (f"- foreign CPU load during the timed runs (other processes' share of the {os.cpu_count()} cores): "
           f"median {median(sh) * 100:.0f}%, max {worst * 100:.0f}%")
    if worst > 0.05: msg += " -- **other processes were busy during some runs; those times are inflated**"
    return msg + '\n'
