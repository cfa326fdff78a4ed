"""Optional dependencies, imported on first use with an error that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ImportError telling which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"this hexz feature needs `{module}`, which is not installed; "
            f"install it with: pip install 'hexz[{extra}]'"
        ) from e
