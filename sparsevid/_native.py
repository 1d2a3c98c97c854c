"""Native-library load order that sparsevid needs, checked when it is imported.

pycolmap 4.2's Linux wheel carries its own copy of zlib's functions and exports them. When
``import pycolmap`` is what first loads the system ``libz.so.1`` (it depends on it), the dynamic
linker binds libz's own internal calls to pycolmap's copies, and every later zlib user in the
process -- OpenCV's and Pillow's PNG codecs, sparsevid's frame writer -- aborts ("double free or
corruption") or hangs. Loading libz first (Python's ``zlib`` module links it) avoids it: ``import
sparsevid`` does, so importing sparsevid before pycolmap is safe in any order afterwards.
:func:`zlib_loaded_by_pycolmap` tells when it is too late.
"""
from __future__ import annotations

import ctypes
import sys

_RTLD_DI_LINKMAP = 2


class _LinkMap(ctypes.Structure):
    pass


_LinkMap._fields_ = [("l_addr", ctypes.c_void_p), ("l_name", ctypes.c_char_p), ("l_ld", ctypes.c_void_p),
                     ("l_next", ctypes.POINTER(_LinkMap)), ("l_prev", ctypes.POINTER(_LinkMap))]


def loaded_libraries() -> list[str]:
    """The shared objects of this process in the order they were loaded (glibc's link map; empty
    where it cannot be read, e.g. not Linux)."""
    if not sys.platform.startswith("linux"):
        return []
    try:
        libc = ctypes.CDLL(None)
        dlinfo = libc.dlinfo
    except (OSError, AttributeError):
        return []
    dlinfo.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    head = ctypes.POINTER(_LinkMap)()
    if dlinfo(libc._handle, _RTLD_DI_LINKMAP, ctypes.byref(head)) != 0:
        return []
    names, node = [], head
    while node:
        names.append((node.contents.l_name or b"").decode(errors="replace"))
        node = node.contents.l_next
    return names


def zlib_loaded_by_pycolmap(libraries: list[str] | None = None) -> bool:
    """Whether the system zlib was first loaded by pycolmap's extension (it then comes after
    ``pycolmap/_core*.so`` in the load order), which breaks every later zlib user."""
    libs = loaded_libraries() if libraries is None else libraries
    base = [name.rsplit("/", 1)[-1] for name in libs]
    core = next((i for i, name in enumerate(libs) if "/pycolmap/_core" in name), None)
    libz = next((i for i, name in enumerate(base) if name.startswith("libz.so")), None)
    return core is not None and libz is not None and libz > core


def check_load_order() -> None:
    """Raise ImportError, with what to do, when pycolmap was imported first and broke zlib."""
    if "pycolmap" in sys.modules and zlib_loaded_by_pycolmap():
        raise ImportError("pycolmap was imported before sparsevid and has broken zlib for this process (writing a "
                          "PNG would abort with 'double free or corruption') -> import sparsevid (or zlib) before "
                          "pycolmap, e.g. restart the interpreter and put `import sparsevid` first")
