"""_codec.py — the evector text form ('[1,2,3]', pgvector's) to and from Python values.

parse_evector returns a float32 numpy array when numpy is importable (and not refused), else a
list of floats. format_evector writes each element as the shortest text of its float32 value, so
values round-trip exactly through the server's float4 vector.
"""
import math
import struct

try:  # numpy is optional
    import numpy as _np
except ImportError:  # pragma: no cover - exercised where numpy is absent
    _np = None


class EVectorParseError(ValueError):
    """Raised for text that is not an evector's '[x,y,...]' form (the text is not echoed)."""


def parse_evector(text, use_numpy=None):
    """'[1,2,3]' -> numpy float32 array (use_numpy None/True with numpy present) or list of float."""
    if text is None:
        return None
    if not isinstance(text, str) or len(text) < 2 or text[0] != "[" or text[-1] != "]":
        raise EVectorParseError("malformed evector text (expected '[x,y,...]')")
    body = text[1:-1].strip()
    try:
        values = [float(x) for x in body.split(",")] if body else []
    except ValueError:
        raise EVectorParseError("malformed evector element") from None
    if (use_numpy is None or use_numpy) and _np is not None:
        return _np.array(values, dtype=_np.float32)
    if use_numpy and _np is None:
        raise ImportError("numpy is not installed; call with use_numpy=False")
    return values


def _float32_text(x):
    """Shortest decimal text that reads back as the float32 nearest to x."""
    f = struct.unpack("f", struct.pack("f", float(x)))[0]
    if not math.isfinite(f):
        raise ValueError("evector elements must be finite")
    for digits in range(6, 10):
        s = f"{f:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(s)))[0] == f:
            return s
    return repr(f)


def format_evector(values):
    """A sequence of numbers (list, tuple, numpy array, Vector) -> '[x,y,...]'."""
    if isinstance(values, Vector):
        values = values.values
    if _np is not None and isinstance(values, _np.ndarray):
        if values.ndim != 1:
            raise ValueError("an evector must be one-dimensional")
        values = values.tolist()
    return "[" + ",".join(_float32_text(x) for x in values) + "]"


class Vector:
    """A vector to send as an evector parameter (the drivers' adapters know this class)."""

    __slots__ = ("values",)

    def __init__(self, values):
        self.values = [float(x) for x in (values.tolist() if hasattr(values, "tolist") else values)]

    def to_text(self):
        """The evector text form."""
        return format_evector(self.values)

    def __repr__(self):
        return f"Vector({len(self.values)} dims)"

    def __eq__(self, other):
        return isinstance(other, Vector) and self.values == other.values
