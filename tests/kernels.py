"Block functions for the engine tests. Tasks are pickled, so their state (attempt counts) lives in files."
import os, time
import numpy as np

def _first_try(marks, block):
    p = f'{marks}/tried-{block.id}'
    first = not os.path.exists(p)
    open(p, 'a').close()
    return first

def fill_block(block, dst, marks, fail_once=(), fail_always=(), sleep=0.):
    "Write block id + 1 into the core; fail on the first try of `fail_once` blocks and always on `fail_always`."
    first = _first_try(marks, block)
    time.sleep(sleep)
    if block.id in fail_always or (block.id in fail_once and first): raise OSError(f'injected failure in block {block.id}')
    dst.write(block.core.start, np.full(block.core.shape, block.id + 1, dst.dtype))

def expected_fill(grid, shape, dtype='uint16'):
    "What `fill_block` writes over a whole grid."
    out = np.zeros(shape, dtype)
    for b in grid: out[b.core.slices] = b.id + 1
    return out
