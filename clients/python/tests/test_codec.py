"""test_codec.py — unit tests of the evector text codec (no server): python3 -m unittest discover."""
import math
import struct
import unittest

from vector_vault import EVectorParseError, Vector, format_evector, parse_evector

try:
    import numpy as np
except ImportError:  # pragma: no cover
    np = None


def f32(x):
    """x rounded to float32."""
    return struct.unpack("f", struct.pack("f", x))[0]


class CodecTest(unittest.TestCase):
    def test_round_trip_is_float32_exact(self):
        values = [0.1, 1 / 3, -2.5, 1e-8, 3.4e38, 123456.789, 0.0]
        text = format_evector(values)
        # The server reads each element as float4: the text must name the same float32.
        self.assertEqual([f32(x) for x in parse_evector(text, use_numpy=False)], [f32(v) for v in values])

    def test_shortest_text(self):
        self.assertEqual(format_evector([0.1, 1, -2.5]), "[0.1,1,-2.5]")

    def test_non_finite_refused(self):
        for bad in (math.nan, math.inf, -math.inf):
            with self.assertRaises(ValueError):
                format_evector([1.0, bad])

    def test_malformed_text_not_echoed(self):
        for bad in ("1,2,3", "[1,2", "[1,secret-ish]", ""):
            with self.assertRaises(EVectorParseError) as cm:
                parse_evector(bad, use_numpy=False)
            self.assertNotIn("secret", str(cm.exception))

    def test_empty_and_none(self):
        self.assertIsNone(parse_evector(None))
        self.assertEqual(parse_evector("[]", use_numpy=False), [])

    def test_vector_wrapper(self):
        v = Vector([1, 2, 3])
        self.assertEqual(v.to_text(), "[1,2,3]")
        self.assertEqual(repr(v), "Vector(3 dims)")  # never the values

    @unittest.skipIf(np is None, "numpy not installed")
    def test_numpy(self):
        a = parse_evector("[1,2.5]")
        self.assertEqual((a.dtype, a.tolist()), (np.float32, [1.0, 2.5]))
        self.assertEqual(format_evector(np.array([0.5, 2], dtype=np.float32)), "[0.5,2]")
        with self.assertRaises(ValueError):
            format_evector(np.zeros((2, 2)))


if __name__ == "__main__":
    unittest.main()
