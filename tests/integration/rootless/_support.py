"""Shared by the rootless test modules (not a conftest: modules call it at import)."""

from __future__ import annotations

import os

import pytest

AS_ROOT_REASON = "rootless tests: as root, test_run_as_user.py runs them as an unprivileged user"


def only_without_root() -> None:
    """Skip the calling module as root: not a missing feature, the root-side wrapper runs it.

    One skip per module (rather than per test) keeps a root run's summary short.
    """
    if os.geteuid() == 0:
        pytest.skip(AS_ROOT_REASON, allow_module_level=True)
