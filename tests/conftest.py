"""Root test configuration: hypothesis profiles.

``dev`` (default: fast), ``ci`` (derandomised, ``deadline=None``, ``print_blob=True``;
CI uses it so runs are reproducible and never flaky), ``thorough`` (10x the examples).
Select one with ``HYPOTHESIS_PROFILE=ci`` or ``pytest --hypothesis-profile=ci``.
"""

from beras.testing.strategies import register_profiles

register_profiles()
