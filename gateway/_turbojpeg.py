"""JPEG decoding at any DCT scale M/8 (M = 1..16) straight into a slice of an array, through
libjpeg-turbo's TurboJPEG API (``libturbojpeg.so.0``, Debian's ``libturbojpeg0``) and ctypes.

Why: libjpeg-turbo can run its inverse DCT at 1/8 .. 16/8 of the image size, so a 512x512 JPEG
letterboxed to 640x640 is a 10/8 decode: resized in the decode, at about decode cost, instead of a
full-size decode and a bilinear resize (Pillow: ~6 ms for that size). simplejpeg (the gateway's
JPEG decoder) only reduces, and Pillow's ``draft`` only by 1/2, 1/4, 1/8. The TurboJPEG API takes
an output pitch, so the pixels land in the model's batch slot (inside the letterbox bars) with no
copy. Without the library the gateway decodes as before (``available()`` is False).

Only the TurboJPEG 2.x functions are used (libjpeg-turbo 2.0+; 3.x keeps them). Each worker thread
has its own decompressor handle; the ctypes calls release the GIL.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SCALES", "JpegHeader", "available", "decode_into", "read_header", "scaled"]

Array = npt.NDArray[Any]
# The scaling factors libjpeg-turbo's decompressor has (numerators over 8).
SCALES = tuple(range(1, 17))
_LIBRARY = "libturbojpeg.so.0"
_TJPF_RGB = 0
_TJCS_CMYK, _TJCS_YCCK = 3, 4
_TJERR_WARNING = 0


def _load() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL(_LIBRARY)
    except OSError:
        return None
    c_int_p = ctypes.POINTER(ctypes.c_int)
    lib.tjInitDecompress.restype = ctypes.c_void_p
    lib.tjInitDecompress.argtypes = []
    lib.tjDestroy.restype = ctypes.c_int
    lib.tjDestroy.argtypes = [ctypes.c_void_p]
    lib.tjDecompressHeader3.restype = ctypes.c_int
    lib.tjDecompressHeader3.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        c_int_p,
        c_int_p,
        c_int_p,
        c_int_p,
    ]
    lib.tjDecompress2.restype = ctypes.c_int
    lib.tjDecompress2.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_void_p,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.tjGetErrorCode.restype = ctypes.c_int
    lib.tjGetErrorCode.argtypes = [ctypes.c_void_p]
    return lib


_lib = _load()


class _Decompressor:
    """A TurboJPEG decompressor handle, destroyed with this object."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.handle: int | None = lib.tjInitDecompress() or None

    def __del__(self) -> None:
        if self.handle is not None:
            self.lib.tjDestroy(self.handle)


class _Handle(threading.local):
    """One decompressor per thread (a TurboJPEG handle is not safe to share between threads); it
    is freed when its thread ends (the thread's local values are dropped then)."""

    def __init__(self) -> None:
        self.decompressor: _Decompressor | None = None

    def get(self, lib: ctypes.CDLL) -> int | None:
        if self.decompressor is None:
            self.decompressor = _Decompressor(lib)
        return self.decompressor.handle

    def reset(self, lib: ctypes.CDLL) -> None:
        """After a failed call: a handle that failed may answer the next header with a size of 0
        (seen with libjpeg-turbo 2.1), so the thread starts over with a fresh one."""
        self.decompressor = None


_handles = _Handle()


def available() -> bool:
    """Whether libturbojpeg could be loaded (else every caller takes its own path)."""
    return _lib is not None


def scaled(size: int, numerator: int) -> int:
    """A dimension decoded at ``numerator``/8, as libjpeg-turbo rounds it (up)."""
    return (size * numerator + 7) // 8


class JpegHeader:
    """Width, height and whether the colours convert to RGB in the decoder (not CMYK/YCCK)."""

    __slots__ = ("height", "rgb", "width")

    def __init__(self, width: int, height: int, rgb: bool) -> None:
        self.width, self.height, self.rgb = width, height, rgb


def read_header(data: bytes) -> JpegHeader | None:
    """The JPEG's header, or None when the library is missing or cannot read it."""
    if _lib is None:
        return None
    handle = _handles.get(_lib)
    if handle is None:
        return None
    w, h, sub, cs = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    if _lib.tjDecompressHeader3(handle, data, len(data), w, h, sub, cs) != 0:
        _handles.reset(_lib)
        return None
    return JpegHeader(w.value, h.value, cs.value not in (_TJCS_CMYK, _TJCS_YCCK))


def decode_into(data: bytes, numerator: int, out: Array, header: JpegHeader) -> bool:
    """Decode ``data`` at ``numerator``/8 into ``out``, an (H, W, 3) uint8 view whose rows may be
    strided (a window of a larger image) but whose pixels are packed, of exactly the scaled size.
    False when the decoder fails (a corrupt JPEG): the caller takes its own path, which answers as
    it always did. Warnings (a truncated scan, extraneous bytes) are not failures: the pixels
    decoded are kept, as simplejpeg's ``strict=False`` keeps them."""
    if _lib is None:
        return False
    width, height = scaled(header.width, numerator), scaled(header.height, numerator)
    if (
        out.shape != (height, width, 3)
        or out.dtype != np.uint8
        or out.strides[1:] != (3, 1)
        or not out.flags.writeable
    ):
        raise ValueError(
            f"output is {out.shape} {out.dtype} {out.strides}, not packed ({height}, {width}, 3)"
        )
    handle = _handles.get(_lib)
    if handle is None:
        return False
    pitch = out.strides[0]
    # asking for exactly the scaled size makes the library pick that scale (the largest one whose
    # result fits is chosen, and the scaled sizes grow with the scale)
    status = _lib.tjDecompress2(handle, data, len(data), out.ctypes.data, width, pitch, height, _TJPF_RGB, 0)
    if status == 0:
        return True
    warning = bool(_lib.tjGetErrorCode(handle) == _TJERR_WARNING)
    _handles.reset(_lib)
    return warning
