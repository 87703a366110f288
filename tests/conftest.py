"""Shared pytest configuration: Hypothesis profiles.

``dev`` (the default) keeps runs short enough for an edit-test loop; ``ci`` searches longer.
Select one with ``HYPOTHESIS_PROFILE=ci pytest``. Tests that set their own ``@settings`` keep
them; tests that scale with the profile read ``settings.default``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=100, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci", max_examples=400, stateful_step_count=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
