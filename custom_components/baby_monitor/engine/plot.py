"""A picture of a scan: waveform, mel spectrogram, probability traces and detected events."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .detector import DetectorConfig
from .frontend import log_mel
from .model import ModelMetadata

__all__ = ["plot_scan"]

_COLOURS = {"cry": "#d62728", "laughter": "#2ca02c"}


def plot_scan(
    out: Path,
    arrays: Mapping[str, Any],
    meta: ModelMetadata,
    configs: Mapping[str, DetectorConfig],
    title: str = "",
) -> Path:
    """Render the scan of one file to a PNG at `out`."""
    try:
        import matplotlib as mpl  # noqa: PLC0415

        mpl.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError as err:
        raise RuntimeError("--plot needs matplotlib (pip install matplotlib)") from err

    frontend = meta.frontend
    audio = arrays["audio"]
    rate = frontend.sample_rate
    duration = audio.size / rate
    context = np.zeros(frontend.win_length - frontend.hop_length, np.float32)
    mel = log_mel(np.concatenate((context, audio)), frontend)
    bands = frontend.heard_mels
    db = mel[:, :bands] / frontend.log.scale + frontend.log.offset

    fig, (wave_ax, mel_ax, prob_ax) = plt.subplots(
        3, 1, figsize=(11, 7), sharex=True, gridspec_kw={"height_ratios": [1, 2, 1.4]}
    )
    step = max(1, audio.size // 20000)
    wave_ax.plot(
        np.arange(0, audio.size, step) / rate, audio[::step], lw=0.4, color="#333"
    )
    wave_ax.set_ylim(-1.05, 1.05)
    wave_ax.set_ylabel("waveform")
    mel_ax.imshow(
        db.T,
        origin="lower",
        aspect="auto",
        cmap="magma",
        extent=(0.0, mel.shape[0] * frontend.hop_length / rate, 0, bands),
    )
    top = min(frontend.fmax, rate / 2)
    mel_ax.set_ylabel(f"mel band ({frontend.fmin:.0f}-{top:.0f} Hz)")
    for i, label in enumerate(meta.labels):
        colour = _COLOURS.get(label, f"C{i}")
        prob_ax.plot(
            arrays["times"],
            arrays["probs"][:, i],
            marker=".",
            color=colour,
            label=label,
        )
        if label in configs:
            prob_ax.axhline(configs[label].threshold, color=colour, ls="--", lw=0.8)
    for episode in arrays["episodes"]:
        colour = _COLOURS.get(episode.label, "grey")
        for ax in (wave_ax, prob_ax):
            ax.axvspan(episode.start, episode.end, color=colour, alpha=0.12)
    prob_ax.set_ylim(0, 1)
    prob_ax.set_xlim(0, max(duration, meta.window_s))
    prob_ax.set_ylabel("probability")
    prob_ax.set_xlabel(
        "time (s); traces at window ends, shaded: each event's estimated sound"
    )
    prob_ax.legend(loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
