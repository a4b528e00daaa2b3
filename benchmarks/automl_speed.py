"""Benchmark 5, learned agglomeration: the speed of connecto's automl pieces against raw baselines, in one run.

Parts:
  xgboost   XGBoost training rows/s: `connecto.automl.fit_edges` (sklearn wrapper, class balancing) vs bare
            `xgboost.train` on a DMatrix, same parameters, on the edge features of a generated Voronoi volume
  trials    Optuna trials per minute: `connecto.automl.automl` on the gala crop (journal storage, pruning, MLflow
            nested runs, final model registered) vs the same objective in a bare in-memory Optuna study
  filter    stage-1 feature filter at 5,000 features x 20,000 edges (`filter_features`: mutual information +
            decorrelation) vs scikit-learn's `SelectKBest(f_classif)` (an ANOVA F-test, no decorrelation)
  scoring   agglomeration overhead of learned scores vs mean affinity: `agglomerate(classifier=...)` vs
            `agglomerate()` on the same fragments (the learned run adds the feature pass and the predictions)

Medians over `--reps` runs. Prints a Markdown section (progress on stderr) and writes benchmarks/results/automl_speed.json.

    python benchmarks/automl_speed.py              # ~6 min on 2 cores
    python benchmarks/automl_speed.py --reps 1 --trials 4 --shape 32,256,256 --json /tmp/smoke.json   # smoke test
"""
from __future__ import annotations
import json, logging, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine, median, rmtree, today, bench_parser, fresh_dir, command, finish
import numpy as np

HERE = Path(__file__).resolve().parent
JSON_OUT = HERE / 'results' / 'automl_speed.json'

def log(*a): print(*a, file=sys.stderr, flush=True)
def triple(s): return tuple(int(v) for v in s.split(','))
def gala(name):
    from connecto.volume import sample_data
    return f"{sample_data(f'fibsem-gala/{name}')}:stack"

def voronoi_training_set(wd:Path, shape):
    "A generated Voronoi volume (boundary map + ground truth) segmented into fragments: its training set and specs."
    sys.path.insert(0, str(HERE.parent / 'tests'))
    from conftest import voronoi_volume
    from connecto.volume import from_array
    from connecto.fragments import fragments
    from connecto.automl import training_set
    gt, b = voronoi_volume(shape, n_cells=max(20, int(np.prod(shape) / 30000)), seed=1)
    from_array(b, str(wd / 'v.zarr/boundaries'), chunks=(shape[0], 128, 128)); from_array(gt, str(wd / 'v.zarr/gt'), chunks=(shape[0], 128, 128))
    fragments(str(wd / 'v.zarr/boundaries'), str(wd / 'v.zarr/fragments'), block_shape=(shape[0], 128, 128), progress=False)
    ts = training_set(str(wd / 'v.zarr/fragments'), str(wd / 'v.zarr/boundaries'), str(wd / 'v.zarr/gt'), str(wd / 'features'),
                      progress=False)
    return ts, {k: str(wd / f'v.zarr/{k}') for k in ('boundaries', 'gt', 'fragments')}

def timed(fn, reps):
    "Seconds of each of `reps` calls of `fn`."
    out = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return out

def bench_xgboost(ts, reps)->dict:
    import xgboost
    from connecto.automl import fit_edges, DEFAULT_PARAMS
    k = np.isfinite(ts.y)
    X, y = ts.X[k], ts.y[k].astype(int)
    p = dict(DEFAULT_PARAMS)
    bare = dict(max_depth=p['max_depth'], eta=p['learning_rate'], subsample=p['subsample'], colsample_bytree=p['colsample_bytree'],
                min_child_weight=p['min_child_weight'], reg_lambda=p['reg_lambda'], tree_method='hist', objective='binary:logistic',
                scale_pos_weight=(len(y) - y.sum()) / max(y.sum(), 1), seed=0)
    ours = timed(lambda: fit_edges(ts.X, ts.y, p), reps)
    raw = timed(lambda: xgboost.train(bare, xgboost.DMatrix(X, label=y), num_boost_round=p['n_estimators']), reps)
    return dict(rows=int(len(y)), features=int(X.shape[1]), n_estimators=p['n_estimators'], connecto_s=ours, bare_s=raw)

def bench_trials(wd:Path, trials:int, reps:int)->dict:
    import optuna
    from connecto.automl import automl, training_set, objective
    runs, bare = [], []
    ts = training_set(gala('train-ws.lzf.h5'), gala('train-p1.lzf.h5'), gala('train-gt.lzf.h5'), str(wd / 'gala-features'),
                      raw=gala('train-image.h5'), progress=False)
    for r in range(reps):
        out = wd / f'automl-{r}'
        t = time.perf_counter()
        rep = automl(gala('train-ws.lzf.h5'), gala('train-p1.lzf.h5'), gala('train-gt.lzf.h5'), str(out), raw=gala('train-image.h5'),
                     trials=trials, progress=False)
        runs.append(dict(seconds=time.perf_counter() - t, trials=rep.trials, cv_voi=rep.cv_voi))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction='minimize', sampler=optuna.samplers.TPESampler(seed=0),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=20))
        t = time.perf_counter(); study.optimize(objective(ts), n_trials=trials); bare.append(time.perf_counter() - t)
        rmtree(out)
    return dict(trials=trials, automl=runs, bare_optuna_s=bare)

def bench_filter(ts, reps, features=5000, rows=20000)->dict:
    import pandas as pd
    from sklearn.feature_selection import SelectKBest, f_classif
    from connecto.automl import filter_features
    rng = np.random.default_rng(0)
    k = np.flatnonzero(np.isfinite(ts.y))
    pick = rng.choice(k, rows, replace=len(k) < rows)
    real = ts.X.iloc[pick].reset_index(drop=True) + rng.normal(0, 1e-3, (rows, ts.X.shape[1]))
    noise = pd.DataFrame(rng.normal(size=(rows, features - real.shape[1])).astype(np.float32),
                         columns=[f'noise{i}' for i in range(features - real.shape[1])])
    X, y = pd.concat([real, noise], axis=1), ts.y[pick]
    ours, kept = [], None
    for _ in range(reps):
        t = time.perf_counter(); kept, _ = filter_features(X, y, keep=100); ours.append(time.perf_counter() - t)
    peer = timed(lambda: SelectKBest(f_classif, k=100).fit(X.to_numpy(np.float32), y.astype(int)), reps)
    return dict(rows=rows, features=features, real_features=int(real.shape[1]), connecto_s=ours, selectkbest_s=peer,
                kept=len(kept), noise_kept=sum(c.startswith('noise') for c in kept))

def bench_scoring(wd:Path, specs:dict, reps:int)->dict:
    from connecto.automl import automl
    from connecto.agglomerate import agglomerate
    clf = wd / 'voronoi-clf'
    automl(specs['fragments'], specs['boundaries'], specs['gt'], str(clf), trials=3, model_name=None, progress=False)
    def run(classifier):
        rmtree(wd / 'seg.zarr')
        return agglomerate(specs['fragments'], specs['boundaries'], str(wd / 'seg.zarr/s'), None if classifier else 0.5,
                           classifier=classifier, progress=False)
    mean = timed(lambda: run(None), reps)
    learned = timed(lambda: run(str(clf)), reps)
    return dict(mean_affinity_s=mean, learned_s=learned)

def markdown(res:dict)->str:
    m = lambda xs: median(xs)
    x, tr, fi, sc = res['xgboost'], res['trials'], res['filter'], res['scoring']
    a_med = m([r['seconds'] for r in tr['automl']])
    s = (f"<!-- BEGIN automl_speed -->\n## 5. Learned agglomeration: speed\n\n- date: {res['date']}\n- machine: {res['machine']}\n"
         f"- command: `{res['command']}`\n- medians of {res['reps']} runs\n\n| what | connecto | baseline | ratio |\n|---|---|---|---|\n")
    s += (f"| XGBoost training, {x['rows']} edges x {x['features']} features, {x['n_estimators']} trees | "
          f"{x['rows'] / m(x['connecto_s']):,.0f} rows/s (`fit_edges`) | {x['rows'] / m(x['bare_s']):,.0f} rows/s (`xgboost.train`) | "
          f"{m(x['connecto_s']) / m(x['bare_s']):.2f}x the time |\n")
    s += (f"| Optuna trials on the gala crop ({tr['trials']} trials, 4-fold spatial CV, objective VOI) | "
          f"{tr['trials'] / a_med * 60:.1f} trials/min (`automl`: features, journal storage, MLflow, final model registered) | "
          f"{tr['trials'] / m(tr['bare_optuna_s']) * 60:.1f} trials/min (same objective, in-memory study) | "
          f"{a_med / m(tr['bare_optuna_s']):.2f}x the time |\n")
    s += (f"| stage-1 filter, {fi['features']} features x {fi['rows']} edges | {m(fi['connecto_s']):.1f} s (`filter_features`; kept "
          f"{fi['kept']}, of them noise {fi['noise_kept']}) | {m(fi['selectkbest_s']):.1f} s (`SelectKBest(f_classif)`) | "
          f"{m(fi['connecto_s']) / m(fi['selectkbest_s']):.1f}x the time |\n")
    s += (f"| agglomerate, {res['shape']} generated volume | {m(sc['learned_s']):.1f} s (learned scores) | "
          f"{m(sc['mean_affinity_s']):.1f} s (mean affinity) | {m(sc['learned_s']) / m(sc['mean_affinity_s']):.2f}x the time |\n")
    s += "\n- automl runs: " + '; '.join(f"{r['seconds']:.0f} s, cv voi {r['cv_voi']:.3f}, trials {r['trials']}" for r in tr['automl']) + '\n'
    return s + '<!-- END automl_speed -->\n'

def main():
    ap = bench_parser(__doc__, '/tmp/connecto-bench/automl', JSON_OUT)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--trials', type=int, default=10)
    ap.add_argument('--shape', type=triple, default=(64, 384, 384), help='generated volume for the xgboost and scoring parts')
    a = ap.parse_args()
    if a.from_json: return print(markdown(json.loads(Path(a.from_json).read_text())))
    logging.getLogger('distributed').setLevel(logging.ERROR)
    wd = fresh_dir(a.workdir)
    res = dict(date=today(), machine=machine(), reps=a.reps, shape='x'.join(map(str, a.shape)),
               command=command())
    log('generated volume'); ts, specs = voronoi_training_set(wd, a.shape); log(f"  {ts}")
    log('xgboost'); res['xgboost'] = bench_xgboost(ts, a.reps)
    log('filter'); res['filter'] = bench_filter(ts, a.reps)
    log('scoring'); res['scoring'] = bench_scoring(wd, specs, a.reps)
    log('trials'); res['trials'] = bench_trials(wd, a.trials, a.reps)
    finish(res, a.json, markdown, wd)

if __name__ == '__main__':
    main()
