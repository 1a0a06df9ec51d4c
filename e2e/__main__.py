"""`python -m e2e`: the end-to-end run (see `e2e/__init__.py`); exit status 0 only if all held."""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

from .run import ROOT, Options, main


def parse(argv: list[str]) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(prog="scripts/e2e", description=__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "build" / "e2e",
        help="folder for Home Assistant's config and log, the timeline and results (build/e2e)",
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=ROOT / "bench" / "e2e_device.png",
        help="where the device page's screenshot goes (bench/e2e_device.png)",
    )
    parser.add_argument(
        "--no-microphone",
        action="store_true",
        help="leave out the PulseAudio microphone room",
    )
    parser.add_argument("--no-browser", action="store_true", help="take no screenshot")
    parser.add_argument(
        "--cpu-report",
        type=Path,
        default=ROOT / "bench" / "hass_cpu.json",
        help="where hass's CPU figures go besides --out (bench/hass_cpu.json, for the report)",
    )
    parser.add_argument(
        "--no-cpu",
        action="store_true",
        help="skip measuring hass's CPU listening vs paused (about 40 s)",
    )
    args = parser.parse_args(argv)
    return Options(
        out=args.out.resolve(),
        screenshot=args.screenshot.resolve(),
        microphone=not args.no_microphone,
        browser=not args.no_browser,
        cpu_report=args.cpu_report.resolve(),
        cpu=not args.no_cpu,
    )


if __name__ == "__main__":
    sys.exit(main(parse(sys.argv[1:])))
