"""Benchmark 6, learned agglomeration: quality on real data, against mean-affinity agglomeration, in one run.

For each volume (fibsem-gala with raw EM, snemi-mini without): `connecto.automl.automl` (Optuna, `--trials`) on the
given fragments, and mean-affinity agglomeration, both scored the same way: VOI on held-out sub-blocks (4-fold
spatial cross-validation), each with the threshold that cross-validation picks. Also the whole-volume VOI of
`agglomerate --classifier` (optimistic: the classifier saw this volume), and the drift monitor's verdict when the
gala classifier meets snemi-mini.

    python benchmarks/automl_quality.py            # ~5 min on 2 cores
"""
from __future__ import annotations
import json, logging, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine, today, bench_parser, fresh_dir, command, finish
import numpy as np

HERE = Path(__file__).resolve().parent
JSON_OUT = HERE / 'results' / 'automl_quality.json'

def log(*a): print(*a, file=sys.stderr, flush=True)
def sample(rel):
    from connecto.volume import sample_data
    return str(sample_data(rel))

VOLUMES = {
    'fibsem-gala': dict(fragments=sample('fibsem-gala/train-ws.lzf.h5') + ':stack', source=sample('fibsem-gala/train-p1.lzf.h5') + ':stack',
                        gt=sample('fibsem-gala/train-gt.lzf.h5') + ':stack', raw=sample('fibsem-gala/train-image.h5') + ':stack'),
    'snemi-mini': dict(fragments=sample('snemi-mini/train-fragments.tif'), source='inverted', gt=sample('snemi-mini/train-labels.tif'),
                       raw=None),
}

def inverted_snemi(wd:Path)->str:
    "snemi-mini's probability map is high inside cells (benchmark 4): stored inverted as a boundary map."
    from connecto.volume import Volume, from_array
    p = Volume(sample('snemi-mini/train-probabilities.tif'))[...]
    spec = str(wd / 'snemi.zarr/boundaries')
    from_array((255 - p).astype(np.uint8), spec)
    return spec

def run_volume(name:str, v:dict, wd:Path, trials:int)->dict:
    from connecto.automl import automl, training_set, fold_voi, THRESHOLDS
    from connecto.agglomerate import agglomerate, mean_boundary
    from connecto.evaluate import evaluate
    t = time.perf_counter()
    rep = automl(v['fragments'], v['source'], v['gt'], str(wd / f'{name}-clf'), raw=v['raw'], trials=trials, model_name=None, progress=False)
    seconds = time.perf_counter() - t
    ts = training_set(v['fragments'], v['source'], v['gt'], str(wd / f'{name}-ts'), raw=v['raw'], progress=False)
    curve = np.mean([fold_voi(ts.graph, mean_boundary(ts.graph), ts.table, ts.folds == f) for f in range(int(ts.folds.max()) + 1)], 0)
    seg = agglomerate(v['fragments'], v['source'], str(wd / f'{name}.zarr/seg'), classifier=str(wd / f'{name}-clf'), raw=v['raw'],
                      progress=False)
    whole = evaluate(seg.outputs[0]['out'], v['gt'], progress=False).scores
    return dict(trials=rep.trials, seconds=seconds, cv_voi=rep.cv_voi, threshold=rep.threshold, best_params=rep.best_params,
                fold_voi=json.loads((wd / f'{name}-clf' / 'classifier.json').read_text())['fold_voi'],
                mean_affinity_cv_voi=float(curve.min()), mean_affinity_threshold=float(THRESHOLDS[curve.argmin()]),
                fragments_voi=ts.info['fragments_voi'], edges=rep.edges, whole_volume=whole, monitoring=seg.monitoring)

def cross_drift(wd:Path)->dict:
    "The gala classifier's drift monitor on snemi-mini (features without raw)."
    from connecto.automl import automl, Classifier
    from connecto.features import edge_feature_table
    g, s = VOLUMES['fibsem-gala'], VOLUMES['snemi-mini']
    automl(g['fragments'], g['source'], g['gt'], str(wd / 'gala-noraw'), trials=5, model_name=None, progress=False)
    clf = Classifier.load(str(wd / 'gala-noraw'))
    ft = edge_feature_table(s['fragments'], s['source'], progress=False)
    return clf.monitor(ft.table, clf.scores(ft.table), stage='benchmark')

def markdown(res:dict)->str:
    s = (f"<!-- BEGIN automl_quality -->\n## 6. Learned agglomeration: quality\n\n- date: {res['date']}\n- machine: {res['machine']}\n"
         f"- command: `{res['command']}`\n\nVOI in bits (split + merge), ground-truth 0 ignored. *Held-out*: mean over 4 spatial "
         "sub-blocks of the VOI of each sub-block's agglomeration, scored by a model that did not see it, at the threshold "
         "cross-validation picks (the same protocol for mean affinity). *Whole volume*: `agglomerate --classifier` on the volume it was "
         "trained on (optimistic).\n\n| volume | fragments VOI | mean affinity, held-out VOI (t) | learned, held-out VOI (t) | "
         "per sub-block | learned, whole volume VOI (split / merge) | trials (pruned) | automl time |\n|---|---|---|---|---|---|---|---|\n")
    for n, r in res['volumes'].items():
        w = r['whole_volume']
        s += (f"| {n} | {r['fragments_voi']['voi']:.3f} | {r['mean_affinity_cv_voi']:.3f} ({r['mean_affinity_threshold']:g}) | "
              f"**{r['cv_voi']:.3f}** ({r['threshold']:g}) | {', '.join(f'{v:.3f}' for v in r['fold_voi'])} | "
              f"{w['voi']:.3f} ({w['voi_split']:.3f} / {w['voi_merge']:.3f}) | {r['trials']['total']} ({r['trials']['pruned']}) | "
              f"{r['seconds']:.0f} s |\n")
    d = res['cross_drift'].get('drift', {})
    s += (f"\n- drift monitor, gala classifier (no raw) on snemi-mini: drifted = {d.get('drifted')}, "
          f"{len(d.get('drifted_features', []))} features over PSI {d.get('psi_threshold')}, edge scores PSI "
          f"{d.get('score_psi', float('nan')):.2f}; performance: " +
          '; '.join(f"{c['metric']} {c['value']:.2f} vs baseline {c['baseline']:.2f} -> {'ok' if c['ok'] else 'DEGRADED'}"
                    for c in res['cross_drift'].get('performance', [])) + '\n')
    return s + '<!-- END automl_quality -->\n'

def main():
    ap = bench_parser(__doc__, '/tmp/connecto-bench/automl-quality', JSON_OUT)
    ap.add_argument('--trials', type=int, default=30)
    a = ap.parse_args()
    if a.from_json: return print(markdown(json.loads(Path(a.from_json).read_text())))
    logging.getLogger('distributed').setLevel(logging.ERROR)
    wd = fresh_dir(a.workdir)
    VOLUMES['snemi-mini']['source'] = inverted_snemi(wd)
    res = dict(date=today(), machine=machine(), command=command(),
               volumes={})
    for n, v in VOLUMES.items():
        log(n); res['volumes'][n] = run_volume(n, v, wd, a.trials); log(f"  {res['volumes'][n]['cv_voi']:.3f}")
    log('cross drift'); res['cross_drift'] = cross_drift(wd)
    finish(res, a.json, markdown, wd)

if __name__ == '__main__':
    main()
