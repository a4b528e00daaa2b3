"""Benchmark 9, boundary model on anisotropic serial-section EM: ISBI 2012 (24 x 512 x 512 sections, 4 x 4 x 50 nm).

`connecto train` (a U-Net with in-plane downsampling (1,2,2) at every level and (1,3,3) kernels there, predicting a boundary map)
within a time budget, against the field's standard pixel classifier trained in the same run on the same voxels: a random forest
on ilastik-style filter features (scikit-image `multiscale_basic_features`: intensity, edges and texture at scales 1..16, per
section), as ilastik and gala's own pixel classifier do. Held out: the last 20% of the longest axis (y; as `train` splits), all 24 sections.

Ground truth: the labels are membrane maps (0 = membrane); for training, neuron ids are the 3D connected components of the
interior (6-connected), 0 = membrane; for scoring, as in the challenge, the 2D connected components of each section.
Measures on the held-out region:
  - boundary average precision (membrane = label 0) of each map
  - per section: VOI of a watershed of each map (`watershed_fragments`, in-plane) and the best VOI over thresholds of
    mean-boundary agglomeration of those fragments (`agglomerate`, one section at a time), averaged over the sections
plus training throughput and peak RSS, and the random forest's training time.

    python benchmarks/unet_isbi.py --minutes 25     # ~35 min on 2 cores
"""
from __future__ import annotations
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine, today, bench_parser, fresh_dir, command, finish, section_head
import numpy as np

HERE = Path(__file__).resolve().parent
JSON_OUT = HERE / 'results' / 'unet_isbi.json'
THRESHOLDS = [round(t, 2) for t in np.arange(0.1, 0.91, 0.1)]

def log(*a): print(*a, file=sys.stderr, flush=True)

def load_isbi():
    "(raw uint8, membrane labels: 255 interior / 0 membrane) of the 24 training sections."
    from connecto.volume import Volume, sample_data
    d = sample_data('isbi2012/train')
    return Volume(f'{d}/image/')[...], Volume(f'{d}/label/')[...]

def ids_3d(interior:np.ndarray)->np.ndarray:
    "Training labels: 6-connected components of the cell interior, 0 = membrane."
    import cc3d
    return cc3d.connected_components(interior, connectivity=6).astype(np.uint32)

def ids_2d(interior:np.ndarray)->np.ndarray:
    "Scoring labels, as in the challenge: 4-connected components of the interior of each section, 0 = membrane."
    from skimage.measure import label
    return np.stack([label(s, connectivity=1) for s in interior]).astype(np.uint32)

def forest_boundaries(raw, membrane, train_sl, test_sl, n_pixels=300_000, seed=0):
    "A random forest on multiscale filter features (ilastik-style), trained on `train_sl`, predicting P(membrane) on `test_sl`."
    from functools import partial
    from sklearn.ensemble import RandomForestClassifier
    from skimage.feature import multiscale_basic_features
    feats = partial(multiscale_basic_features, intensity=True, edges=True, texture=True, sigma_min=1, sigma_max=16)
    t = time.perf_counter()
    Xtr = np.concatenate([feats(s)[None] for s in raw[train_sl].astype(np.float32) / 255])
    ytr = membrane[train_sl]
    rng = np.random.default_rng(seed)
    pick = rng.choice(ytr.size, min(n_pixels, ytr.size), replace=False)
    rf = RandomForestClassifier(n_estimators=100, max_depth=20, n_jobs=2, random_state=seed)
    rf.fit(Xtr.reshape(-1, Xtr.shape[-1])[pick], ytr.ravel()[pick])
    fit_s = time.perf_counter() - t
    Xte = np.concatenate([feats(s)[None] for s in raw[test_sl].astype(np.float32) / 255])
    p = rf.predict_proba(Xte.reshape(-1, Xte.shape[-1]))[:, 1].reshape(Xte.shape[:-1])
    return p.astype(np.float32), fit_s

def boundary_ap(boundary, membrane)->float:
    from sklearn.metrics import average_precision_score
    return float(average_precision_score(membrane.ravel().astype(int), boundary.ravel()))

def section_voi(boundary, gt2d, wd:Path, name:str)->dict:
    "Per section: VOI of the in-plane watershed fragments, and the best over thresholds of their mean-boundary agglomeration."
    from connecto.fragments import watershed_fragments
    from connecto.agglomerate import agglomerate
    from connecto.evaluate import voi
    from connecto.volume import from_array, Volume
    frags = watershed_fragments(boundary, in_xy=True)
    f_voi, sweep = [], {t: [] for t in THRESHOLDS}
    for z in range(boundary.shape[0]):
        base = wd / f'{name}-{z}.zarr'
        from_array(frags[z:z + 1].astype(np.uint64), str(base / 'fragments')); from_array(boundary[z:z + 1], str(base / 'b'))
        f_voi.append(voi(frags[z:z + 1], gt2d[z:z + 1])['voi'])
        rep = agglomerate(str(base / 'fragments'), str(base / 'b'), str(base / 'seg'), THRESHOLDS, progress=False)
        for o in rep.outputs: sweep[o['threshold']].append(voi(Volume(o['out'])[...], gt2d[z:z + 1])['voi'])
    means = {t: float(np.mean(v)) for t, v in sweep.items()}
    best = min(means, key=means.get)
    return dict(fragments_voi=float(np.mean(f_voi)), best_threshold=best, best_voi=means[best], sweep={str(k): v for k, v in means.items()})

def main():
    ap = bench_parser(__doc__, '/tmp/connecto-bench/isbi', JSON_OUT)
    ap.add_argument('--minutes', type=float, default=25.)
    ap.add_argument('--features', type=int, default=12, help='feature maps at the first level')
    ap.add_argument('--precision', default='fp32', help="fp32, or bf16 (autocast; CPUs with AVX512-BF16 or AMX run it faster)")
    ap.add_argument('--levels', type=int, default=3, help='downsampling levels, (1,2,2) each')
    ap.add_argument('--in-plane', action='store_true', help='(1,3,3) kernels at every level (a 2D network) and no missing or '
                    'misaligned sections in the augmentation (they only make sense with context across sections)')
    ap.add_argument('--output-shape', default='8,64,64', help='training crop (z,y,x) of the output')
    a = ap.parse_args()
    if a.from_json: return print(markdown(json.loads(Path(a.from_json).read_text())))
    import connecto, torch                  # connecto first: it turns on torch's huge-page CPU allocator (nbs/10_unet.ipynb)
    from connecto.volume import from_array, Volume
    from connecto.train import train, TrainConfig, split_regions
    from connecto.predict import predict
    wd = fresh_dir(a.workdir)
    raw, labels = load_isbi()
    interior = labels > 127
    from_array(raw, str(wd / 'isbi.zarr/raw'), voxel_size=(50, 4, 4))
    from_array(ids_3d(interior), str(wd / 'isbi.zarr/gt'), voxel_size=(50, 4, 4))
    model = dict(features=a.features, factors=[[1, 2, 2]] * a.levels, output='boundaries')
    if a.in_plane: model['kernel_sizes'] = [[1, 3, 3]] * (a.levels + 1)
    cfg = TrainConfig.load(model=model, augment=dict(missing_section=0., misalign=0.) if a.in_plane else {},
                           output_shape=[int(v) for v in a.output_shape.split(',')], batch_size=2, learning_rate=1e-3, precision=a.precision, iterations=100000, time_limit=a.minutes,
                           val_interval=100, checkpoint_interval=100, val_crops=8, log_interval=20)
    log(f"training for {a.minutes} min")
    r = train(str(wd / 'isbi.zarr/raw'), str(wd / 'isbi.zarr/gt'), str(wd / 'run'), cfg, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    log(r.summary())
    t = time.perf_counter()
    predict(str(wd / 'isbi.zarr/raw'), r.checkpoint, str(wd / 'pred.zarr/boundaries'), block_shape=(24, 256, 256), progress=False)
    pred_s = time.perf_counter() - t
    ours = Volume(str(wd / 'pred.zarr/boundaries'))[...].astype(np.float32)
    train_roi, val = split_regions(raw.shape, cfg.val_fraction)
    log('random forest baseline')
    rf, rf_fit = forest_boundaries(raw, ~interior, train_roi.slices, val.slices)
    gt2d, membrane = ids_2d(interior[val.slices]), ~interior[val.slices]
    res = dict(date=today(), machine=machine(), torch=torch.__version__, command=command(), train=r.to_dict(),
               config=cfg.__dict__ | {}, peak_rss=peak, predict_seconds=pred_s, forest_fit_seconds=rf_fit,
               held_out=[list(val.start), list(val.stop)])
    for name, b in (('connecto U-Net', ours[val.slices]), ('random forest (ilastik features)', rf)):
        res[name] = dict(ap=boundary_ap(b, membrane), **section_voi(b, gt2d, wd, name.split()[0]))
        log(name, res[name]['ap'], res[name]['best_voi'])
    finish(res, a.json, markdown, wd)

def _axis(res)->str: return 'zyx'[int(np.argmax(res['held_out'][0]))]

def _model(res)->str:
    "The U-Net's shape in words, from the run's config."
    m = res.get('config', {}).get('model', {})
    levels = len(m.get('factors', [0] * 3))
    kernels = ('(1,3,3) kernels at every level (2D), no missing or misaligned sections in the augmentation' if m.get('kernel_sizes')
               else '(1,3,3) kernels there and 3x3x3 at the bottom')
    return f"{m.get('features', 12)} feature maps, {levels} levels of (1,2,2) with {kernels}"

def markdown(res:dict)->str:
    t = res['train']
    s = (section_head('unet_isbi', '9. Boundary model: quality on ISBI 2012 (anisotropic ssTEM)', res, f", torch {res['torch']} (CPU)") +
         f"`connecto train` on the 24 ISBI 2012 training sections (4 x 4 x 50 nm), the last 20% along {_axis(res)} held out (voxels "
         f"{res['held_out'][0]} to {res['held_out'][1]}); U-Net {_model(res)}, valid "
         f"padding, boundary output, precision {res.get('config', {}).get('precision', 'fp32')}; {t['iterations']} iterations of batch 2 "
         f"(crops {'x'.join(map(str, res.get('config', {}).get('output_shape', [8, 64, 64])))}) in {t['seconds'] / 60:.0f} min "
         f"({t['samples_per_second']:.1f} samples/s, peak RSS {res['peak_rss'] / 2**30:.2f} GiB); best validation loss "
         f"{t['val_loss']:.4f}. Peer: a random forest (100 trees) on scikit-image multiscale filter features, trained on 300k "
         f"voxels of the same training region in {res['forest_fit_seconds']:.0f} s. Scored on the held-out region; VOI per section "
         f"(2D connected components of the interior, as the challenge scores), averaged over the 24 sections.\n\n"
         "| boundary map | boundary average precision | VOI of watershed fragments | best VOI after mean-boundary agglomeration (t) |\n"
         "|---|---|---|---|\n")
    for n in ('connecto U-Net', 'random forest (ilastik features)'):
        r = res[n]
        s += f"| {n} | {r['ap']:.3f} | {r['fragments_voi']:.3f} | {r['best_voi']:.3f} ({r['best_threshold']:g}) |\n"
    return s + '<!-- END unet_isbi -->\n'

if __name__ == '__main__':
    main()
