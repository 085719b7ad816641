"""TensorFlow's stateless Philox draws in NumPy, so every pipeline draws the same warps.

``int32_bits(seed, shape)`` equals ``tf.random.stateless_uniform(shape, seed, minval=None,
maxval=None, dtype=tf.int32, alg="philox")`` bit for bit: Philox-4x32-10 with TF's key and
counter derivation from the seed (``GenerateKey`` in ``stateless_random_ops.cc``: the seed
is the counter of one Philox call under a fixed key, whose output becomes the key and the
counter's high words), element ``i`` being word ``i % 4`` of block ``i // 4``.
``normal_from_bits`` is ``warps.normal_from_bits`` (top 23 bits, ``ndtri``) in float64
rounded to float32: within a few float32 ulps of TF's float32 ``ndtri``, signs identical.
Tested against TensorFlow in ``tests/test_numpy_warps.py``.
"""

from __future__ import annotations

import functools

import numpy as np

_M = (0xD2511F53, 0xCD9E8D57)  # round multipliers
_W = (0x9E3779B9, 0xBB67AE85)  # key increments (golden ratio, sqrt(3) - 1)
_MASK = 0xFFFFFFFF


def _keys(key: tuple[int, int]) -> list[tuple[int, int]]:
    """The ten round keys of ``key`` (uint32 arithmetic wraps)."""
    return [((key[0] + r * _W[0]) & _MASK, (key[1] + r * _W[1]) & _MASK) for r in range(10)]


def _philox_one(counter: list[int], key: tuple[int, int]) -> list[int]:
    """Philox-4x32-10 of one counter (four uint32 Python ints): four uint32."""
    c0, c1, c2, c3 = counter
    for k0, k1 in _keys(key):
        p0, p1 = _M[0] * c0, _M[1] * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & _MASK, (p0 >> 32) ^ c3 ^ k1, p0 & _MASK
    return [c0, c1, c2, c3]


def _philox(counter: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox-4x32-10 of ``counter`` ``[N, 4]`` uint64 (uint32 values) under ``key``: ``[N, 4]`` uint32."""
    c0, c1, c2, c3 = counter.T
    m0, m1, low, shift = np.uint64(_M[0]), np.uint64(_M[1]), np.uint64(_MASK), np.uint64(32)
    for k0, k1 in _keys(key):
        p0, p1 = c0 * m0, c2 * m1
        c0, c1, c2, c3 = (p1 >> shift) ^ c1 ^ np.uint64(k0), p1 & low, (p0 >> shift) ^ c3 ^ np.uint64(k1), p0 & low
    return np.stack([c0, c1, c2, c3], 1).astype(np.uint32)


def key_counter(seed) -> tuple[tuple[int, int], list[int]]:
    """TF's ``(key, counter)`` (uint32 Python ints) of a stateless seed ``[2]`` (int32 seeds
    sign-extend, so an int32 and an int64 seed of the same values agree)."""
    s0, s1 = (int(v) & 0xFFFFFFFFFFFFFFFF for v in np.asarray(seed).reshape(2))
    mix = _philox_one([s0 & _MASK, s0 >> 32, s1 & _MASK, s1 >> 32], (0x3EC8F720, 0x02461E29))
    return (mix[0], mix[1]), [0, 0, mix[2], mix[3]]


def int32_bits(seed, shape) -> np.ndarray:
    """``shape`` int32 random bits of stateless ``seed`` ``[2]``, as TF's stateless Philox."""
    key, start = key_counter(seed)
    size = int(np.prod(shape))
    blocks = np.arange((size + 3) // 4, dtype=np.uint64)
    low = np.uint64(start[0] | start[1] << 32) + blocks  # the 128-bit counter's low half
    high = np.uint64(start[2] | start[3] << 32) + (low < blocks).astype(np.uint64)  # its carry
    mask, shift = np.uint64(_MASK), np.uint64(32)
    words = _philox(np.stack([low & mask, low >> shift, high & mask, high >> shift], 1), key)
    return words.reshape(-1)[:size].view(np.int32).reshape(shape)


def split_seed(seed, num: int = 2) -> np.ndarray:
    """``[num, 2]`` int32 seeds from ``seed`` ``[2]``: ``warps.split_seed``."""
    return int32_bits(seed, (num, 2))


# Wichura's AS 241 (PPND16): the normal quantile to ~1e-16 relative, no erf needed.
_CENTRAL = ([3.387132872796366608, 133.14166789178437745, 1971.5909503065514427, 13731.693765509461125,
             45921.953931549871457, 67265.770927008700853, 33430.575583588128105, 2509.0809287301226727],
            [1.0, 42.313330701600911252, 687.1870074920579083, 5394.1960214247511077,
             21213.794301586595867, 39307.89580009271061, 28729.085735721942674, 5226.495278852545925])
_NEAR = ([1.42343711074968357734, 4.6303378461565452959, 5.7694972214606914055, 3.64784832476320460504,
          1.27045825245236838258, 0.24178072517745061177, 0.0227238449892691845833, 7.7454501427834140764e-4],
         [1.0, 2.05319162663775882187, 1.6763848301838038494, 0.68976733498510000455,
          0.14810397642748007459, 0.0151986665636164571966, 5.475938084995344946e-4, 1.05075007164441684324e-9])
_FAR = ([6.6579046435011037772, 5.4637849111641143699, 1.7848265399172913358, 0.29656057182850489123,
         0.026532189526576123093, 0.0012426609473880784386, 2.71155556874348757815e-5, 2.01033439929228813265e-7],
        [1.0, 0.59983220655588793769, 0.13692988092273580531, 0.0148753612908506148525,
         7.868691311456132591e-4, 1.8463183175100546818e-5, 1.4215117583164458887e-7, 2.04426310338993978564e-15])


def _ratio(coefficients, x: np.ndarray) -> np.ndarray:
    """``num(x) / den(x)``, both polynomials by Horner's rule (coefficients lowest first)."""
    num, den = (functools.reduce(lambda acc, c: acc * x + c, cs[-2::-1], np.full_like(x, cs[-1]))
                for cs in coefficients)
    return num / den


def ndtri(u: np.ndarray) -> np.ndarray:
    """Standard normal quantile of ``u`` in ``(0, 1)``, float64 (AS 241; the tails, ~15 % of
    uniform draws, computed on their own elements)."""
    q = u - 0.5
    out = q * _ratio(_CENTRAL, 0.180625 - q * q)
    tails = np.flatnonzero(np.abs(q) > 0.425)
    qt = q.flat[tails]
    r = np.sqrt(-np.log(0.5 - np.abs(qt)))
    near = r <= 5.0
    tail = np.where(near, _ratio(_NEAR, r - 1.6), _ratio(_FAR, r - 5.0))  # |z| > 5 is rare: no split
    out.flat[tails] = np.copysign(tail, qt)
    return out


def normal_from_bits(bits: np.ndarray) -> np.ndarray:
    """``warps.normal_from_bits``: int32 bits -> float32 normals, ``u = (t + 0.5) 2^-23`` from
    the top 23 bits ``t`` (every draw finite, |z| <= 5.3)."""
    top = bits.view(np.uint32) >> np.uint32(9)
    return ndtri((top.astype(np.float64) + 0.5) * 2.0**-23).astype(np.float32)


__all__ = ["int32_bits", "key_counter", "ndtri", "normal_from_bits", "split_seed"]
