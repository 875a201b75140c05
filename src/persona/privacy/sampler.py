"""persona's exact samplers of OpenDP's noise distributions, public for auditors.

The private releases of :mod:`persona.privacy` draw their noise here: OpenDP's discrete
Laplace and discrete Gaussian, exactly, from OS CSPRNG bits (:data:`OS_BITS`), and OpenDP's
float release on the grid ``2^k`` on top of them. A reviewer can sample these distributions
directly and test them against their probability mass functions (``persona.testing.audit``
does); :class:`SeededBits` makes a run reproducible, for tests only.

>>> from persona.privacy.sampler import SeededBits, discrete_gaussian
>>> discrete_gaussian(1.0, 3, bits=SeededBits(0)).shape
(3,)
"""

from persona.privacy._sampler import (
    OS_BITS,
    RandomBits,
    SeededBits,
    discrete_gaussian,
    discrete_gaussian_pmf,
    discrete_laplace,
    discrete_laplace_pmf,
    gaussian_on_grid,
    laplace_on_grid,
    round_to_grid,
)

__all__ = [
    "OS_BITS",
    "RandomBits",
    "SeededBits",
    "discrete_gaussian",
    "discrete_gaussian_pmf",
    "discrete_laplace",
    "discrete_laplace_pmf",
    "gaussian_on_grid",
    "laplace_on_grid",
    "round_to_grid",
]
