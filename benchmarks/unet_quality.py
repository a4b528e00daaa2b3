"""Benchmark 7, boundary model quality: a U-Net trained by `connecto train` on the gala crop within a time budget,
against the gala authors' boundary map `train-p1`, on the held-out part of the crop (the last 20% along x).

Measures, on the held-out region only:
  - boundary average precision: ground-truth boundaries = voxels with a differently labelled face neighbour, and the
    label-0 membranes of gala's ground truth (`train.zero_marks_boundaries`), scores = the predicted boundary map vs p1. The
    U-Net's map is made from its affinities two ways: 1 - the mean of the 3 affinities stored at a voxel (its low-side
    contacts only; with perfect affinities this scores an AP of 0.835 on gala, since the ground truth marks both sides of
    a label change) and 1 - the mean over its 6 face contacts (`six_contact_boundary`; AP 1.0 with perfect affinities)
  - VOI of a simple watershed: `connecto.fragments.watershed_fragments` (minima seeds) on each map, then the best VOI
    of mean-affinity agglomeration over thresholds 0.1..0.9 (also on each map)
plus training throughput (samples/s) and peak RSS of the training process.

    python benchmarks/unet_quality.py --minutes 25     # ~30 min on 2 cores
"""
from __future__ import annotations
import json, resource, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import machine, today, bench_parser, fresh_dir, command, finish, section_head
import numpy as np

HERE = Path(__file__).resolve().parent
JSON_OUT = HERE / 'results' / 'unet_quality.json'

def log(*a): print(*a, file=sys.stderr, flush=True)
def gala(name):
    from connecto.volume import sample_data
    return f"{sample_data(f'fibsem-gala/{name}')}:stack"

def boundary_ap(boundary:np.ndarray, labels:np.ndarray)->float:
    "Average precision of `boundary` for the ground-truth boundaries of `labels` (unknown voxels left out)."
    from sklearn.metrics import average_precision_score
    from connecto.train import boundary_targets, zero_marks_boundaries
    t, m = boundary_targets(labels, 'boundary' if zero_marks_boundaries(labels) else 'unknown')   # gala: 0 = membranes
    k = m[0] > 0
    return float(average_precision_score(t[0][k].astype(int), boundary[k]))

def six_contact_boundary(aff:np.ndarray)->np.ndarray:
    """1 - the mean affinity of each voxel's face contacts on both sides (up to 6). Channel d at p is the affinity of
    p and p - e_d, so `1 - aff[:3].mean(0)` only sees each voxel's low side: a voxel whose high-side neighbour is in
    another object is missed, while the ground truth marks both sides of a label change."""
    a = aff[:3].astype(np.float32)
    total, count = np.zeros(a.shape[1:], np.float32), np.zeros(a.shape[1:], np.float32)
    for d in range(3):
        lo = [slice(None)] * 3; lo[d] = slice(1, None)          # the pair (p, p - e_d) exists for p >= 1
        hi = [slice(None)] * 3; hi[d] = slice(None, -1)         # the pair (p + e_d, p), seen from p
        total[tuple(lo)] += a[d][tuple(lo)]; count[tuple(lo)] += 1
        total[tuple(hi)] += a[d][tuple(lo)]; count[tuple(hi)] += 1
    return 1 - total / np.maximum(count, 1)

def watershed_voi(boundary:np.ndarray, labels:np.ndarray, wd:Path, name:str)->dict:
    "VOI of the fragments of `boundary` and of the best mean-affinity agglomeration of them."
    from connecto.fragments import watershed_fragments
    from connecto.evaluate import voi
    from connecto.volume import from_array
    from connecto.agglomerate import agglomerate
    frags = watershed_fragments(boundary.astype(np.float32))
    out = dict(fragments=voi(frags, labels))
    from_array(frags.astype(np.uint64), str(wd / f'{name}.zarr/fragments')); from_array(boundary.astype(np.float32), str(wd / f'{name}.zarr/b'))
    ts = [round(t, 2) for t in np.arange(0.1, 0.91, 0.1)]
    rep = agglomerate(str(wd / f'{name}.zarr/fragments'), str(wd / f'{name}.zarr/b'), str(wd / f'{name}.zarr/seg'), ts, progress=False)
    from connecto.volume import Volume
    sweep = {o['threshold']: voi(Volume(o['out'])[...], labels) for o in rep.outputs}
    best = min(sweep, key=lambda t: sweep[t]['voi'])
    return dict(out, best_threshold=best, best=sweep[best], sweep={str(k): v['voi'] for k, v in sweep.items()})

def main():
    ap = bench_parser(__doc__, '/tmp/connecto-bench/unet', JSON_OUT)
    ap.add_argument('--minutes', type=float, default=25.)
    ap.add_argument('--learning-rate', type=float, default=1e-3)
    ap.add_argument('--features', type=int, default=16, help='feature maps at the first level')
    ap.add_argument('--output-shape', type=lambda s: [int(v) for v in s.split(',')], default=[32, 64, 64], help='of one training crop, z,y,x')
    ap.add_argument('--batch-size', type=int, default=1)
    ap.add_argument('--precision', default='bf16', help="bf16 (autocast: 1.85x per step on this AVX512-BF16 CPU) or fp32")
    a = ap.parse_args()
    if a.from_json: return print(markdown(json.loads(Path(a.from_json).read_text())))
    import connecto, torch                  # connecto first: it turns on torch's huge-page CPU allocator (nbs/10_unet.ipynb)
    from connecto.train import train, TrainConfig, split_regions
    from connecto.predict import predict
    from connecto.volume import Volume
    wd = fresh_dir(a.workdir)
    cfg = TrainConfig.load(model=dict(features=a.features, factors=[[2, 2, 2], [2, 2, 2]]), output_shape=a.output_shape, batch_size=a.batch_size,
                           learning_rate=a.learning_rate, precision=a.precision, iterations=100000, time_limit=a.minutes, val_interval=100, checkpoint_interval=100,
                           val_crops=8, log_interval=20)
    log(f"training for {a.minutes} min")
    r = train(gala('train-image.h5'), gala('train-gt.lzf.h5'), str(wd / 'run'), cfg, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    log(r.summary())
    t = time.perf_counter()
    predict(gala('train-image.h5'), r.checkpoint, str(wd / 'pred.zarr/aff'), block_shape=(50, 100, 200), progress=False)
    pred_s = time.perf_counter() - t
    aff = Volume(str(wd / 'pred.zarr/aff'))[...]
    ours = 1 - aff[:3].mean(0)
    p1 = Volume(gala('train-p1.lzf.h5'))[...].astype(np.float32)
    gt = Volume(gala('train-gt.lzf.h5'))[...]
    _, val = split_regions(gt.shape, cfg.val_fraction)
    sl = val.slices
    res = dict(date=today(), machine=machine(), torch=torch.__version__, command=command(),
               train=r.to_dict(), config=cfg.__dict__ | {}, peak_rss=peak, predict_seconds=pred_s, held_out=[list(val.start), list(val.stop)])
    for name, b in (('connecto U-Net', ours), ('connecto U-Net, 6 contacts', six_contact_boundary(aff)), ('gala p1', p1)):
        res[name] = dict(ap=boundary_ap(b[sl], gt[sl]), **watershed_voi(b[sl], gt[sl], wd, name.replace(' ', '_')))
        log(name, res[name]['ap'], res[name]['best']['voi'])
    finish(res, a.json, markdown, wd)

def markdown(res:dict)->str:
    t = res['train']
    s = (section_head('unet_quality', '7. Boundary model: quality on the gala crop', res, f", torch {res['torch']} (CPU)") +
         f"`connecto train` on `fibsem-gala` raw + ground truth, the last 20% "
         f"along x held out (voxels {res['held_out'][0]} to {res['held_out'][1]}); U-Net {res['config']['model']['features']} feature maps, levels (2,2,2) x 2, valid "
         f"padding, affinities, training crops of {'x'.join(map(str, res['config']['output_shape']))} output voxels, Adam lr "
         f"{res['config']['learning_rate']:g}, precision {res['config'].get('precision', 'fp32')}; {t['iterations']} iterations of batch {res['config']['batch_size']} in {t['seconds'] / 60:.0f} min ({t['samples_per_second']:.1f} "
         f"samples/s, peak RSS {res['peak_rss'] / 2**30:.2f} GiB); best validation loss {t['val_loss']:.4f}. Prediction of the whole "
         f"crop: {res['predict_seconds']:.1f} s. Scored on the held-out region only.\n\n"
         "| boundary map | boundary average precision | VOI of watershed fragments (split / merge) | best VOI after mean-affinity agglomeration (t) |\n"
         "|---|---|---|---|\n")
    for n in [k for k in ('connecto U-Net', 'connecto U-Net, 6 contacts', 'gala p1') if k in res]:
        r = res[n]; f = r['fragments']; b = r['best']
        s += (f"| {n} | {r['ap']:.3f} | {f['voi']:.3f} ({f['voi_split']:.3f} / {f['voi_merge']:.3f}) | {b['voi']:.3f} "
              f"({r['best_threshold']:g}) |\n")
    return s + '<!-- END unet_quality -->\n'

if __name__ == '__main__':
    main()
