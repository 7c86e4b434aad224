"""The conformance targets: every module here defines ``TARGET``, one adapter under the
cases. A module added here is picked up without being listed anywhere."""

from __future__ import annotations

import importlib
import pkgutil

from tests.providers.conformance.protocol import AnyTarget


def all_targets() -> list[AnyTarget]:
    """Every target, in module-name order."""
    names = sorted(info.name for info in pkgutil.iter_modules(__path__))
    return [importlib.import_module(f"{__name__}.{name}").TARGET for name in names]
