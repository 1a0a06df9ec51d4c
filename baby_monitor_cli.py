"""Entry point of the `baby-monitor` command: the detection engine without Home Assistant.

The engine lives inside the integration folder (that folder is what HACS installs), and importing
it normally runs the integration's `__init__`, which needs Home Assistant. The command line only
needs the engine, so the integration package is entered as a bare namespace instead.
"""

from __future__ import annotations

from pathlib import Path
import sys
import types

_PACKAGE = "custom_components.baby_monitor"


def _engine_only() -> None:
    """Register the integration package as a plain namespace unless it is already imported."""
    if _PACKAGE in sys.modules:
        return
    root = Path(__file__).resolve().parent / "custom_components"
    for name, path in (("custom_components", root), (_PACKAGE, root / "baby_monitor")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(path)]
            sys.modules[name] = module


def main() -> int:
    """Run `baby-monitor`."""
    _engine_only()
    from custom_components.baby_monitor.engine.cli import main as cli_main  # noqa: PLC0415

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
