"""`baby-monitor scan`: the JSON contract, bad input and options, streaming, the runtime choice."""

from __future__ import annotations

from collections.abc import Callable
import json
from pathlib import Path
import struct
import subprocess
import sys
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from baby_monitor_engine.audio import BLOCK_SAMPLES, decode_file
from baby_monitor_engine.backends import ModelRuntime
from baby_monitor_engine.cli import main, scan_file
from baby_monitor_engine.detector import DetectorConfig, Episode, detect_episodes
from baby_monitor_engine.model import DEFAULT_MODEL, load_metadata
from baby_monitor_engine.windows import clip_windows
from tests.conftest import write_wav


def scan(
    capsys: pytest.CaptureFixture[str], *args: str | Path
) -> tuple[int, list[dict[str, Any]]]:
    """Run `scan --json` in-process; return the exit status and one object per output line."""
    status = main(["scan", "--json", *map(str, args)])
    out = capsys.readouterr().out
    return status, [json.loads(line) for line in out.splitlines()]


def test_real_cry_is_detected_and_reported_per_the_contract(
    capsys: pytest.CaptureFixture[str], validation_clip: Callable[[str, str], Path]
) -> None:
    """A Donate-a-cry clip scores over the cry threshold: one cry event with the contract's keys."""
    cry = validation_clip("cry", "donateacry")
    status, (result,) = scan(capsys, cry)
    assert status == 0
    assert set(result) == {"file", "duration_s", "backend", "windows", "events"}
    assert result["file"] == str(cry)
    assert result["backend"] in {"litert", "tflite", "numpy"}
    assert set(result["windows"][0]) == {"t", "cry", "laughter"}
    threshold = load_metadata(DEFAULT_MODEL).thresholds["cry"]
    assert max(w["cry"] for w in result["windows"]) > threshold
    assert [e["type"] for e in result["events"]] == ["cry"]
    assert set(result["events"][0]) == {"type", "start", "end", "confidence"}


def test_speech_gives_no_cry(
    capsys: pytest.CaptureFixture[str], validation_clip: Callable[[str, str], Path]
) -> None:
    """Adult read speech, never trained on, produces no cry event."""
    speech = validation_clip("other", "deeply_korean_read")
    status, (result,) = scan(capsys, speech)
    assert status == 0
    assert all(e["type"] != "cry" for e in result["events"])


def test_bad_files_are_reported_and_the_others_still_scanned(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    validation_clip: Callable[[str, str], Path],
) -> None:
    """Corrupt, empty, non-audio and missing files get an error line; exit status is 1."""
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_text("this is not audio\n" * 50)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(256)) * 4)
    good = validation_clip("cry", "donateacry")
    status, results = scan(
        capsys, empty, text, good, corrupt, tmp_path / "missing.flac"
    )
    assert status == 1
    assert [r["file"] for r in results] == [
        str(p) for p in (empty, text, good, corrupt, tmp_path / "missing.flac")
    ]
    errors = {Path(r["file"]).name: r.get("error") for r in results}
    assert errors["empty.wav"] == "empty file"
    assert errors["missing.flac"] == "no such file"
    assert str(errors["notes.txt"]).startswith("cannot decode")
    assert errors["corrupt.wav"]
    assert "windows" in results[2] and "error" not in results[2]


@pytest.mark.parametrize(
    ("name", "rate", "channels"),
    [("8k", 8000, 1), ("48k", 48000, 1), ("stereo", 44100, 2)],
)
def test_any_rate_or_channel_count_is_converted(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    validation_clip: Callable[[str, str], Path],
    name: str,
    rate: int,
    channels: int,
) -> None:
    """A cry resampled to 8 kHz, 48 kHz or 44.1 kHz stereo is still found, with the same duration."""
    from baby_monitor_engine.audio import decode_file, resample

    audio = decode_file(validation_clip("cry", "donateacry"))
    converted = resample(audio, 16000, rate)
    if channels == 2:
        converted = np.stack([converted, converted * 0.5], axis=1)
    path = write_wav(tmp_path / f"{name}.wav", converted, rate, channels)
    status, (result,) = scan(capsys, path)
    assert status == 0
    assert result["duration_s"] == pytest.approx(audio.size / 16000, abs=0.01)
    assert max(w["cry"] for w in result["windows"]) > 0.5


def test_silence_and_clipping_are_handled(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Digital silence gives low scores; a square wave clipped at full scale does not crash."""
    silence = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 9))
    t = np.arange(16000 * 3) / 16000
    clipped = write_wav(
        tmp_path / "clipped.wav", np.clip(4 * np.sin(2 * np.pi * 300 * t), -1, 1)
    )
    status, results = scan(capsys, silence, clipped)
    assert status == 0
    assert len(results[0]["windows"]) == 3  # ends at 7, 8, 9 s
    assert max(w["cry"] for w in results[0]["windows"]) < 0.2
    assert results[0]["events"] == []
    assert len(results[1]["windows"]) == 1  # shorter than a window: one window


def test_nan_and_infinite_samples_become_silence(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A float WAV containing NaN and inf still scans to finite probabilities."""
    samples = np.sin(np.arange(16000 * 2) / 5).astype("<f4") * 0.3
    samples[100:2000] = np.nan
    samples[5000:6000] = np.inf
    body = samples.tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 16000 * 4, 4, 32)
    header = b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(body)) + b"WAVE"
    path = tmp_path / "nan.wav"
    path.write_bytes(
        header
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(body))
        + body
    )
    status, (result,) = scan(capsys, path)
    assert status == 0
    assert all(np.isfinite(w["cry"]) and 0 <= w["cry"] <= 1 for w in result["windows"])


def test_backends_give_the_same_scan(
    capsys: pytest.CaptureFixture[str], validation_clip: Callable[[str, str], Path]
) -> None:
    """`--backend numpy` and `--backend litert` agree on every window within 1e-4."""
    laugh = validation_clip("laughter", "esc50")
    results = {}
    for backend in ("numpy", "litert"):
        status, (result,) = scan(capsys, "--backend", backend, laugh)
        assert status == 0 and result["backend"] == backend
        results[backend] = np.array(
            [[w["cry"], w["laughter"]] for w in result["windows"]]
        )
    np.testing.assert_allclose(results["numpy"], results["litert"], atol=1.1e-4)


def test_plot_is_written(
    tmp_path: Path, validation_clip: Callable[[str, str], Path]
) -> None:
    """`--plot` writes a PNG with the scan of the file."""
    out = tmp_path / "scan.png"
    assert main(["scan", "--plot", str(out), str(validation_clip("cry", "esc50"))]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_mismatch_exits_2_with_the_reason(
    capsys: pytest.CaptureFixture[str], model_copy: Path, tmp_path: Path
) -> None:
    """A truncated model file stops the scan with status 2 and says what is wrong."""
    tflite = model_copy.with_suffix(".tflite")
    tflite.write_bytes(tflite.read_bytes()[:500])
    wav = write_wav(tmp_path / "x.wav", np.zeros(16000))
    assert main(["scan", "--model", str(model_copy), str(wav)]) == 2
    assert "does not match its metadata" in capsys.readouterr().err


def test_scan_works_without_litert_or_home_assistant(
    tmp_path: Path, validation_clip: Callable[[str, str], Path]
) -> None:
    """The console script runs on numpy alone: no LiteRT, tflite-runtime or Home Assistant."""
    code = (
        "import sys\n"
        "for name in ('ai_edge_litert', 'tflite_runtime', 'homeassistant'):\n"
        "    sys.modules[name] = None\n"
        "from baby_monitor_engine.cli import main\n"
        f"sys.argv = ['baby-monitor', 'scan', '--json', {str(validation_clip('cry', 'donateacry'))!r}]\n"
        "sys.exit(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["backend"] == "numpy"
    assert result["events"] and result["events"][0]["type"] == "cry"


def test_listen_prints_cry_events_from_a_stream(
    capsys: pytest.CaptureFixture[str], validation_clip: Callable[[str, str], Path]
) -> None:
    """`listen --url` on a recording prints cry_started then cry_stopped as JSON lines.

    The clip is 7 s long: too short for the default confirm time, which a live source waits
    for, and enough without it.
    """
    clip = str(validation_clip("cry", "donateacry"))
    status = main(["listen", "--confirm", "0", "--url", clip])
    captured = capsys.readouterr()
    events = [json.loads(line)["event"] for line in captured.out.splitlines()]
    assert status == 0
    assert events == ["cry_started", "cry_stopped"]
    assert "stream ended" in captured.err
    assert main(["listen", "--url", clip]) == 0
    assert capsys.readouterr().out == ""


def test_listen_to_an_unreachable_stream_exits_2(
    capsys: pytest.CaptureFixture[str], socket_enabled: None
) -> None:
    """A stream URL nobody serves ends with status 2 and a message naming the redacted URL."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://user:secret@127.0.0.1:{port}/live.wav"
    assert main(["listen", "--url", url]) == 2
    err = capsys.readouterr().err
    assert "secret" not in err and f"127.0.0.1:{port}" in err


def test_devices_lists_portaudio_inputs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`devices` shows each input with its index, channels and rate, the default marked."""
    from baby_monitor_engine import sources

    fake = [
        sources.InputDevice(0, "USB nursery mic", 1, 48000.0, True),
        sources.InputDevice(3, "Webcam", 2, 44100.0, False),
    ]
    monkeypatch.setattr(sources, "list_input_devices", lambda: fake)
    monkeypatch.setattr(sources, "portaudio_available", lambda: True)
    assert main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "*   0  USB nursery mic  (1 ch, 48000 Hz)",
        "    3  Webcam  (2 ch, 44100 Hz)",
    ]
    assert main(["devices", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[1]["name"] == "Webcam"


def test_devices_without_portaudio_points_to_ffmpeg(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where PortAudio is missing (HA OS), `devices` says how to use the ffmpeg microphone."""
    from baby_monitor_engine import sources

    monkeypatch.setattr(sources, "list_input_devices", list)
    monkeypatch.setattr(sources, "portaudio_available", lambda: False)
    assert main(["devices"]) == 0
    assert "--ffmpeg-mic pulse default" in capsys.readouterr().out


def test_human_output_lists_errors_and_events(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    validation_clip: Callable[[str, str], Path],
) -> None:
    """Without --json each file gets a summary line, its events, or its error."""
    cry = validation_clip("cry", "donateacry")
    status = main(["scan", str(cry), str(tmp_path / "missing.wav")])
    out = capsys.readouterr().out.splitlines()
    assert status == 1
    assert out[0].startswith(f"{cry}: 7.0 s, 1 windows, peak cry")
    assert out[1].lstrip().startswith("cry")
    assert out[2] == f"{tmp_path / 'missing.wav'}: error: no such file"


def test_listen_verbose_prints_every_window(
    capsys: pytest.CaptureFixture[str], validation_clip: Callable[[str, str], Path]
) -> None:
    """`--verbose` adds one line of probabilities per window."""
    assert (
        main(
            [
                "listen",
                "--verbose",
                "--confirm",
                "0",
                "--url",
                str(validation_clip("cry", "donateacry")),
            ]  # fmt: skip
        )
        == 0
    )
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"t", "cry", "laughter"} <= set(lines[0])
    assert [line["event"] for line in lines[1:]] == ["cry_started", "cry_stopped"]


def whole_file_scan(
    path: Path, runtime: ModelRuntime, hop_s: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], list[Episode]]:
    """Scan as `scan` did before it streamed: the whole file decoded, cut and scored at once."""
    meta = runtime.meta
    audio = decode_file(path, meta.sample_rate)
    times, windows = clip_windows(audio, meta.frontend, meta.window_s, hop_s)
    probs = runtime.predict_many(windows)
    return (
        times,
        probs,
        detect_episodes(times, probs, meta.labels, scan_configs(runtime)),
    )


def scan_configs(runtime: ModelRuntime) -> dict[str, DetectorConfig]:
    """Return the detector settings `scan` uses by default."""
    meta = runtime.meta
    return {
        label: DetectorConfig(meta.thresholds[label], window_s=meta.window_s)
        for label in meta.labels
    }


@pytest.fixture
def nursery(tmp_path: Path, validation_clip: Callable[[str, str], Path]) -> Path:
    """Real clips in a row: speech, a cry, 14 s of silence, laughter twice (a FLAC)."""
    parts = [
        decode_file(validation_clip("other", "deeply_korean_read"))[: 16000 * 8],
        decode_file(validation_clip("cry", "donateacry")),
        np.zeros(16000 * 14, np.float32),
        decode_file(validation_clip("laughter", "esc50")),
        decode_file(validation_clip("laughter", "esc50")),
    ]
    wav = write_wav(tmp_path / "nursery.wav", np.concatenate(parts))
    flac = tmp_path / "nursery.flac"
    subprocess.run(["ffmpeg", "-v", "error", "-i", wav, flac], check=True)
    return flac


@pytest.mark.parametrize("hop_s", [1.0, 0.5, 0.3])
@pytest.mark.parametrize("clip", ["nursery", "music"])
def test_streamed_scan_gives_the_whole_file_scan(
    numpy_runtime: ModelRuntime,
    validation_clip: Callable[[str, str], Path],
    nursery: Path,
    clip: str,
    hop_s: float,
) -> None:
    """Real clips scanned block by block give the windows and events of a whole-file scan.

    Hops that do not divide the 7-s window (0.3 s) still start at 7 s, as the file scan does.
    """
    path = nursery if clip == "nursery" else validation_clip("other", "librosa_data")
    times, probs, episodes = whole_file_scan(path, numpy_runtime, hop_s)
    result, _ = scan_file(str(path), numpy_runtime, scan_configs(numpy_runtime), hop_s)
    assert [w["t"] for w in result["windows"]] == [round(float(t), 3) for t in times]
    streamed = np.array([[w["cry"], w["laughter"]] for w in result["windows"]])
    np.testing.assert_allclose(streamed, probs, atol=1e-4)
    expected = [(e.label, e.start, e.end) for e in episodes]
    assert len(result["events"]) == len(expected)
    for event, (label, start, end) in zip(result["events"], expected, strict=True):
        assert event["type"] == label
        assert event["start"] == pytest.approx(start, abs=1e-3)
        assert event["end"] == pytest.approx(end, abs=1e-3)
    if clip == "nursery":
        assert {e["type"] for e in result["events"]} == {"cry", "laughter"}


def test_block_size_does_not_change_the_scan(
    numpy_runtime: ModelRuntime, nursery: Path
) -> None:
    """Blocks of 1000 samples, 3 s and a bit, or the default 10 s give the same scan."""
    configs = scan_configs(numpy_runtime)
    results = [
        scan_file(str(nursery), numpy_runtime, configs, 0.5, block_samples=size)[0]
        for size in (1000, 16000 * 3 + 7, BLOCK_SAMPLES)
    ]
    for result in results[1:]:
        assert result["duration_s"] == results[0]["duration_s"]
        assert [w["t"] for w in result["windows"]] == [
            w["t"] for w in results[0]["windows"]
        ]
        for window, first in zip(result["windows"], results[0]["windows"], strict=True):
            assert window["cry"] == pytest.approx(first["cry"], abs=2e-4)
        assert [e["type"] for e in result["events"]] == [
            e["type"] for e in results[0]["events"]
        ]


def peak_rss_kb(path: Path, decoder: str) -> int:
    """Scan `path` in a fresh interpreter; return its peak resident memory in kB."""
    code = (
        "import resource, sys\n"
        "from baby_monitor_engine import audio, cli\n"
        f"if {decoder == 'wave'}:\n"
        "    audio.ffmpeg_path = lambda: None\n"
        "status = cli.main(['scan', '--backend', 'numpy', '--json', sys.argv[1]])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert "error" not in json.loads(done.stdout)
    return int(done.stderr.split()[-1])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("decoder", "minutes", "rate", "suffix"),
    [("ffmpeg", 30, 16000, "flac"), ("wave", 20, 44100, "wav")],
)
def test_memory_stays_flat_however_long_the_file(
    tmp_path: Path, decoder: str, minutes: int, rate: int, suffix: str
) -> None:
    """Half an hour scans in the memory one minute takes (whole-file decoding: 3 GB an hour).

    With ffmpeg, and without it (44.1 kHz WAV through the standard library and the resampler),
    the peak resident memory of a long scan exceeds a one-minute scan's by under 40 MB.
    """
    peaks = []
    for seconds in (60, minutes * 60):
        path = tmp_path / f"{seconds}.{suffix}"
        subprocess.run(
            [
                *("ffmpeg", "-v", "error", "-f", "lavfi", "-i"),
                f"anoisesrc=d={seconds}:c=pink:r={rate}:a=0.1",
                *("-ac", "1", str(path)),
            ],
            check=True,
        )
        peaks.append(peak_rss_kb(path, decoder))
    assert peaks[1] - peaks[0] < 40_000, peaks


def test_a_file_shorter_than_a_frame_gets_one_window(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """300 samples (under one 25-ms frame) are scored as one window, not a crash."""
    status, (result,) = scan(capsys, write_wav(tmp_path / "click.wav", np.ones(300)))
    assert status == 0
    assert result["duration_s"] == pytest.approx(300 / 16000, abs=1e-3)
    # one window, ending with the first 10-ms frame
    assert [w["t"] for w in result["windows"]] == [0.01]


def test_a_missing_file_alone_is_still_a_per_file_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The README's contract holds for a single file too: an error object and status 1."""
    status, results = scan(capsys, tmp_path / "missing.wav")
    assert status == 1
    assert results == [{"file": str(tmp_path / "missing.wav"), "error": "no such file"}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["scan", "--hop", "0"],
            "argument --hop: must be more than 0 seconds, got '0'",
        ),
        (
            ["scan", "--hop", "-1"],
            "argument --hop: must be more than 0 seconds, got '-1'",
        ),
        (
            ["scan", "--hop", "nan"],
            "argument --hop: expected a finite number, got 'nan'",
        ),
        (["scan", "--hop", "1s"], "argument --hop: expected a finite number, got '1s'"),
        (
            ["scan", "--cry-threshold", "0"],
            "argument --cry-threshold: must be a probability between 0 and 1 (both excluded), got '0'",
        ),
        (
            ["scan", "--laughter-threshold", "1.5"],
            "argument --laughter-threshold: must be a probability between 0 and 1 (both excluded), got '1.5'",
        ),
        (
            ["scan", "--confirm", "-2"],
            "argument --confirm: must be 0 seconds or more, got '-2'",
        ),
        (
            ["scan", "--hold", "-0.5"],
            "argument --hold: must be 0 seconds or more, got '-0.5'",
        ),
        (["scan", "--backend", "gpu"], "argument --backend: invalid choice: 'gpu'"),
        (
            ["listen", "--seconds", "-1"],
            "argument --seconds: must be more than 0 seconds, got '-1'",
        ),
        (
            ["listen", "--seconds", "0"],
            "argument --seconds: must be more than 0 seconds, got '0'",
        ),
        (
            ["listen", "--hop", "inf"],
            "argument --hop: expected a finite number, got 'inf'",
        ),
    ],
)
def test_bad_values_are_usage_errors(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """A bad option value exits with status 2 and names the option and the value."""
    with pytest.raises(SystemExit) as exited:
        main([*args, "any.wav"] if args[0] == "scan" else args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_thresholds_inside_the_range_are_used(
    capsys: pytest.CaptureFixture[str], validation_clip: Callable[[str, str], Path]
) -> None:
    """A threshold under every window's cry score makes read speech a cry; none by default."""
    speech = validation_clip("other", "deeply_korean_read")
    _, (default,) = scan(capsys, speech)
    floor = min(w["cry"] for w in default["windows"])
    _, (lenient,) = scan(capsys, "--cry-threshold", f"{floor / 2:g}", speech)
    assert [e["type"] for e in default["events"]] == []
    assert [e["type"] for e in lenient["events"]] == ["cry"]
