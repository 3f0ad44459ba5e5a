"""Decoded frames as numpy arrays and as PyAV frames.

Both numpy and PyAV are optional: they are imported here, on first use.
The array layouts are PyAV's ``to_ndarray()`` ones, so code written against
PyAV frames reads shmdemux frames the same way:

* yuv420p / yuvj420p / nv12: one uint8 array of shape (height * 3 // 2,
  width), the planes one after the other;
* yuv444p / yuvj444p: (3, height, width);
* gray, gray8: (height, width); gray16le/be: uint16 (height, width);
* rgb24, bgr24: (height, width, 3); rgba, bgra, argb, abgr: (height,
  width, 4); yuyv422: (height, width, 2); gbrp: (height, width, 3) in
  G, B, R plane order as PyAV gives them;
* audio, planar formats: (channels, samples); packed: (1, samples *
  channels), of the sample type.

``copy=False`` returns arrays that view the ring (valid until the next
read, like Packet.data) where the layout allows it without a copy.
"""

from __future__ import annotations

from typing import Any

_AUDIO_DTYPES = {
    "u8": "u1", "u8p": "u1", "s16": "<i2", "s16p": "<i2", "s32": "<i4",
    "s32p": "<i4", "flt": "<f4", "fltp": "<f4", "dbl": "<f8", "dblp": "<f8",
    "s64": "<i8", "s64p": "<i8",
}


def _plane_rows(np: Any, plane: Any, width_bytes: int, rows: int) -> Any:
    """A (rows, width_bytes) uint8 view of a plane, rows line_size apart."""
    buf = np.frombuffer(plane, dtype=np.uint8)
    return np.ndarray((rows, width_bytes), dtype=np.uint8, buffer=buf,
                      strides=(plane.line_size, 1))


def _video(np: Any, frame: Any, copy: bool) -> Any:
    fmt, w, h = frame.format, frame.width, frame.height
    planes = frame.planes
    cw, ch = (w + 1) // 2, (h + 1) // 2

    def rows(i: int, wb: int, nrows: int) -> Any:
        return _plane_rows(np, planes[i], wb, nrows)

    if fmt in ("yuv420p", "yuvj420p"):
        return np.concatenate((rows(0, w, h).reshape(-1),
                               rows(1, cw, ch).reshape(-1),
                               rows(2, cw, ch).reshape(-1))).reshape(-1, w)
    if fmt == "nv12":
        return np.concatenate((rows(0, w, h).reshape(-1),
                               rows(1, 2 * cw, ch).reshape(-1))).reshape(-1, w)
    if fmt in ("yuv444p", "yuvj444p"):
        return np.stack([rows(i, w, h) for i in range(3)])
    if fmt == "gbrp":
        return np.stack([rows(i, w, h) for i in range(3)], axis=-1)
    packed = {"gray": (1, "u1"), "gray8": (1, "u1"), "rgb24": (3, "u1"),
              "bgr24": (3, "u1"), "rgba": (4, "u1"), "bgra": (4, "u1"),
              "argb": (4, "u1"), "abgr": (4, "u1"), "yuyv422": (2, "u1"),
              "gray16le": (1, "<u2"), "gray16be": (1, ">u2")}
    if fmt not in packed:
        raise ValueError("to_ndarray() does not support the pixel format "
                         "%r; frame.planes has the raw planes" % fmt)
    comps, dt = packed[fmt]
    size = np.dtype(dt).itemsize
    arr = rows(0, w * comps * size, h).view(dt)
    shape = (h, w) if comps == 1 else (h, w, comps)
    arr = arr.reshape(shape)
    return arr.copy() if copy else arr


def _audio(np: Any, frame: Any, copy: bool) -> Any:
    dt = _AUDIO_DTYPES.get(frame.format)
    if dt is None:
        raise ValueError("to_ndarray() does not support the sample format "
                         "%r" % frame.format)
    count = frame.samples * (1 if frame.is_planar else frame.channels)
    arrays = [np.frombuffer(p, dtype=dt, count=count) for p in frame.planes]
    if not copy and len(arrays) == 1:
        return arrays[0].reshape(1, -1)
    return np.vstack(arrays)


def to_ndarray(frame: Any, copy: bool = True) -> Any:
    """See Frame.to_ndarray()."""
    try:
        import numpy as np
    except ImportError as e:  # pragma: no cover - numpy is optional
        raise ImportError("Frame.to_ndarray() needs numpy "
                          "(Debian: python3-numpy)") from e
    if frame.codec_type == "video":
        return _video(np, frame, copy)
    return _audio(np, frame, copy)


def _copy_plane(src: Any, dst: Any, rows: int, width: int) -> None:
    s = memoryview(src)
    d = memoryview(dst)
    if src.line_size == dst.line_size and len(s) <= len(d):
        d[:len(s)] = s
        return
    sl, dl = src.line_size, dst.line_size
    for r in range(rows):
        d[r * dl:r * dl + width] = s[r * sl:r * sl + width]


def to_av(frame: Any) -> Any:
    """See Frame.to_av(): a PyAV frame holding a copy of the planes, with
    pts and time_base set."""
    try:
        import av
    except ImportError as e:  # pragma: no cover - PyAV is optional
        raise ImportError("Frame.to_av() needs PyAV (Debian: python3-av)") \
            from e
    if frame.codec_type == "video":
        out = av.VideoFrame(frame.width, frame.height, frame.format)
        for src, dst in zip(frame.planes, out.planes):
            _copy_plane(src, dst, min(src.height, dst.height),
                        min(src.width, dst.line_size))
    else:
        layout = frame.channels
        try:
            out = av.AudioFrame(format=frame.format, layout=layout,
                                samples=frame.samples)
        except (ValueError, TypeError):
            out = av.AudioFrame(format=frame.format,
                                layout="stereo" if layout == 2 else "mono",
                                samples=frame.samples)
        out.sample_rate = frame.sample_rate
        for src, dst in zip(frame.planes, out.planes):
            s = memoryview(src)
            d = memoryview(dst)
            n = min(len(s), len(d))
            d[:n] = s[:n]
    out.pts = frame.pts
    if frame.time_base is not None:
        out.time_base = frame.time_base
    return out
