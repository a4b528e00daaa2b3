__version__ = "0.1.0"

import os as _os
# torch's CPU allocator then puts tensors of 2 MiB and more on transparent huge pages. Without it every large activation
# is a fresh mmap that faults in 4 KiB pages: a fifth of a CPU forward pass, and more in a Dask worker (whose
# MALLOC_TRIM_THRESHOLD_ makes glibc unmap even more). torch reads the variable at its first large allocation. See
# nbs/10_unet.ipynb, "CPU memory"; set it to 0 to opt out.
_os.environ.setdefault('THP_MEM_ALLOC_ENABLE', '1')
