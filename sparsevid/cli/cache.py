"""``sparsevid cache``: where compiled code is kept between runs, how big it is, and clearing it."""
from __future__ import annotations

from sparsevid import caches


def add_parser(sub) -> None:
    p = sub.add_parser("cache", help="show (or --clear) the compile caches that make later runs start fast",
                       description="List the compile caches a run uses (torch.compile's inductor cache under "
                                   "$SPARSEVID_CACHE or ~/.cache/sparsevid, gsplat's CUDA build, the CPU "
                                   "rasterizer's numba kernels, the Difix prompt embeddings) with their folders and sizes; --clear deletes them "
                                   "(the next run rebuilds what it needs).")
    p.add_argument("--clear", nargs="*", metavar="NAME", default=None,
                   help="delete these caches (inductor, gsplat, numba, difix; none named = all)")
    p.add_argument("--build", action="store_true",
                   help="build what runs on this machine need ahead of time (gsplat's CUDA extension when "
                        "CUDA is there, the CPU rasterizer's kernels), so that no run pays for it; "
                        "`make setup` runs it")
    p.set_defaults(func=run)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n else "empty"


def run(args) -> int:
    caches.configure()
    if args.clear is not None:  # first: `--clear NAME --build` rebuilds what it cleared
        names = args.clear or None
        unknown = sorted(set(names or []) - {e.name for e in caches.entries()})
        if unknown:
            from sparsevid.errors import SparsevidError

            raise SparsevidError(f"unknown cache {', '.join(unknown)}", fix="name inductor, gsplat, numba or difix")
        own = caches.foreign_inductor_dir()
        if own is not None and (names is None or "inductor" in names):
            print(f"kept inductor: {own} is TORCHINDUCTOR_CACHE_DIR, a folder of yours that may hold other files "
                  "(clear it yourself)")
        gone = caches.clear(names)
        for e in gone:
            print(f"cleared {e.name}: {e.path} ({_mb(e.bytes)})")
        if not gone:
            print("nothing to clear")
        if not args.build:
            return 0
    if args.build:
        import torch

        caches.build(cuda=torch.cuda.is_available())
        return 0
    for e in caches.entries():
        print(f"{e.name:9s} {_mb(e.bytes):>10s}  {e.path}  -- {e.what}")
    return 0
