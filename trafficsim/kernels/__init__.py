"""Numba kernels: pure functions over flat float64/int64 arrays in SI units.

Low level and unvalidated: engines validate, convert units and allocate, kernels fill ``out``
arrays and return integer status codes. Only ``numpy``, ``numba`` and ``math`` are imported here.
Importing this package compiles nothing; kernels compile on their first call.
"""

__all__: list[str] = []
