"""A crafted ``.tflite`` fails fast at load, naming what is too big, without allocating it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import contextlib
import hashlib
import json
from pathlib import Path
import struct
import subprocess
import sys
import tracemalloc
from typing import Any

import numpy as np
import pytest

from baby_monitor_engine.backends import load_runtime
from baby_monitor_engine.cli import main
from baby_monitor_engine.model import DEFAULT_MODEL, ModelError, load_metadata
from baby_monitor_engine.tflite import (
    MAX_MEMORY_BYTES,
    MAX_MODEL_FILE_BYTES,
    NumpyInterpreter,
    TFLiteFormatError,
    parse_model,
)
from tests.conftest import write_wav

from .test_tflite_numpy import ModelBuilder, schema

SHIPPED = DEFAULT_MODEL.with_name("baby_monitor_backbone.tflite")  # the larger network
INPUT_NAME = "serving_default_log_mel:0"
# What a refused model may allocate while being refused: the parsed metadata, no tensor.
SMALL = 8 << 20


@contextlib.contextmanager
def peak_allocation() -> Iterator[list[int]]:
    """Trace Python and numpy allocations; the list holds the peak in bytes on exit."""
    peak = [0]
    tracemalloc.start()
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def assert_refused(content: bytes, match: str) -> None:
    """Check that loading `content` raises TFLiteFormatError matching `match`, allocating little."""
    with peak_allocation() as peak, pytest.raises(TFLiteFormatError, match=match):
        NumpyInterpreter(model_content=content)
    assert peak[0] < SMALL, f"refusing the model allocated {peak[0]} bytes"


def input_shape_offset(content: bytes) -> int:
    """Find where the shape vector (length, then int32 dimensions) of tensor 0 starts."""
    original = parse_model(content).tensors[0].shape
    vector = struct.pack(f"<{len(original) + 1}i", len(original), *original)
    assert content.count(vector) == 1
    return content.index(vector)


def shipped_with_input_shape(shape: Sequence[int]) -> bytes:
    """Overwrite, in place, the dimensions of the shipped model's input tensor."""
    content = SHIPPED.read_bytes()
    start = input_shape_offset(content) + 4
    patch = struct.pack(f"<{len(shape)}i", *shape)
    return content[:start] + patch + content[start + len(patch) :]


def chain_of_adds(length: int, count: int) -> bytes:
    """Build x (1, length) float32 through `count` ADDs of a constant: count + 2 tensors."""
    builder = ModelBuilder()
    x = builder.tensor((1, length))
    one = builder.tensor((1,), data=np.ones(1, dtype=np.float32))
    value = x
    for _ in range(count):
        out = builder.tensor((1, length))
        builder.operator(
            schema.BuiltinOperator.ADD,
            [value, one],
            [out],
            (schema.BuiltinOptions.AddOptions, schema.AddOptionsT()),
        )
        value = out
    return builder.build([x], [value])


def conv_model(
    input_shape: tuple[int, int, int, int],
    kernel: tuple[int, int],
    output_shape: tuple[int, int, int, int],
    *,
    padding: int,
    dilation: int = 1,
) -> bytes:
    """One float CONV_2D with a single output channel and zero weights."""
    builder = ModelBuilder()
    x = builder.tensor(input_shape)
    weights = builder.tensor(
        (1, *kernel, input_shape[3]),
        data=np.zeros((1, *kernel, input_shape[3]), dtype=np.float32),
    )
    y = builder.tensor(output_shape)
    options = schema.Conv2DOptionsT()
    options.padding = padding
    options.strideH = options.strideW = 1
    options.dilationHFactor = dilation
    options.dilationWFactor = 1
    builder.operator(
        schema.BuiltinOperator.CONV_2D,
        [x, weights, -1],
        [y],
        (schema.BuiltinOptions.Conv2DOptions, options),
    )
    return builder.build([x], [y])


def write_model(json_path: Path, content: bytes, *, backbone: bool = False) -> Path:
    """Replace the head (or the backbone) beside `json_path` with `content`, re-pinning it."""
    data: dict[str, Any] = json.loads(json_path.read_text())
    pinned = data["backbone"] if backbone else data
    name = data["backbone"]["file"] if backbone else f"{json_path.stem}.tflite"
    json_path.with_name(name).write_bytes(content)
    pinned["sha256"] = hashlib.sha256(content).hexdigest()
    json_path.write_text(json.dumps(data))
    return json_path


# --------------------------------------------------------------------------------------------
# Tensor shapes and the memory budget
# --------------------------------------------------------------------------------------------


def test_shipped_model_uses_a_small_part_of_the_budget() -> None:
    """The caps leave room: our backbone holds ~13 MB of the 256 MiB, far below a crafted model."""
    model = parse_model(SHIPPED.read_bytes())
    assert model.budget.used < MAX_MEMORY_BYTES // 10
    assert len(SHIPPED.read_bytes()) < MAX_MODEL_FILE_BYTES // 20
    NumpyInterpreter(model_path=SHIPPED).allocate_tensors()


def test_huge_dimension_is_refused_naming_the_tensor_and_its_shape() -> None:
    """An input of 1 x 2**31-1 x 128 x 1 floats (1 TiB) is refused before anything is sized."""
    assert_refused(
        shipped_with_input_shape((1, 2**31 - 1, 128, 1)),
        rf"tensor 0 \('{INPUT_NAME}'\) of shape \[1, 2147483647, 128, 1\] has "
        r"274877906816 elements; one tensor may have at most 16777216",
    )


def test_product_of_dimensions_cannot_overflow() -> None:
    """Eight dimensions of 2**31-1 multiply to 2**248, not to a wrapped-around small number."""
    builder = ModelBuilder()
    x = builder.tensor([2**31 - 1] * 8)
    assert_refused(
        builder.build([x], [x]), r"tensor 0 \('t0'\) of shape \[2147483647, "
    )


@pytest.mark.parametrize("dimension", [0, -1, -(2**31)])
def test_zero_and_negative_dimensions_are_refused(dimension: int) -> None:
    """Every dimension must be at least 1; the message gives the whole shape."""
    assert_refused(
        shipped_with_input_shape((1, dimension, 128, 1)),
        rf"tensor 0 \('{INPUT_NAME}'\) has an invalid shape \[1, {dimension}, 128, 1\]",
    )


def test_rank_beyond_eight_is_refused_before_the_shape_is_read() -> None:
    """A shape vector claiming 9 entries (or millions) is refused by its length."""
    content = SHIPPED.read_bytes()
    start = input_shape_offset(content)
    content = content[:start] + struct.pack("<i", 9) + content[start + 4 :]
    assert_refused(content, r"shape of tensor 0 .* has 9 entries, more than the 8")


def test_tensors_each_small_but_too_many_bytes_together_are_refused() -> None:
    """Sixteen tensors of 16 MiB pass one by one; the one that crosses 256 MiB is named."""
    assert_refused(
        chain_of_adds(1 << 22, 15),
        r"tensor 16 \('t16'\) of shape \[1, 4194304\] needs 16\.0 MiB, which takes the "
        r"model past the 256\.0 MiB",
    )


# --------------------------------------------------------------------------------------------
# Operators whose results or scratch would outgrow the declared tensors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("left_is_input", [False, True], ids=["folded", "run"])
def test_broadcast_larger_than_the_declared_output_is_refused(
    left_is_input: bool,
) -> None:
    """(16384, 1) + (1, 16384) would fill 1 GiB whether folded or run on zeros at load."""
    builder = ModelBuilder()
    column = np.zeros((16384, 1), dtype=np.float32)
    a = builder.tensor(column.shape, data=None if left_is_input else column)
    b = builder.tensor((1, 16384), data=np.zeros((1, 16384), dtype=np.float32))
    y = builder.tensor((16384, 1))
    builder.operator(
        schema.BuiltinOperator.ADD,
        [a, b],
        [y],
        (schema.BuiltinOptions.AddOptions, schema.AddOptionsT()),
    )
    assert_refused(
        builder.build([a] if left_is_input else [], [y]),
        r"operator ADD .*: computes an output of shape \[16384, 16384\], but the model "
        r"declares \[16384, 1\]",
    )


def test_matmul_larger_than_the_declared_output_is_refused() -> None:
    """(1, 16384, 1) x (1, 1, 16384) is checked against its declared output before running."""
    builder = ModelBuilder()
    a = builder.tensor((1, 16384, 1))
    b = builder.tensor((1, 1, 16384), data=np.zeros((1, 1, 16384), dtype=np.float32))
    y = builder.tensor((1, 1, 1))
    builder.operator(
        schema.BuiltinOperator.BATCH_MATMUL,
        [a, b],
        [y],
        (schema.BuiltinOptions.BatchMatMulOptions, schema.BatchMatMulOptionsT()),
    )
    assert_refused(
        builder.build([a], [y]),
        r"operator BATCH_MATMUL .*: computes an output of shape \[1, 16384, 16384\]",
    )


def test_huge_dilation_cannot_size_the_padded_input() -> None:
    """SAME padding for a 3-tap kernel dilated 2**30 times would pad 8 rows to 2**31."""
    content = conv_model(
        (1, 8, 8, 1),
        (3, 3),
        (1, 8, 8, 1),
        padding=schema.Padding.SAME,
        dilation=2**30,
    )
    assert_refused(
        content,
        r"operator CONV_2D .*: padded input of shape \[1, 2147483656, 10, 1\] needs "
        r"81920\.0 MiB",
    )


def test_im2col_patches_count_against_the_budget() -> None:
    """A 33 x 33 x 64 kernel over 32 x 32 positions needs 285 MB of patches: refused."""
    content = conv_model(
        (1, 64, 64, 64), (33, 33), (1, 32, 32, 1), padding=schema.Padding.VALID
    )
    assert_refused(content, r"operator CONV_2D .*: 1024 x 69696 matrix of patches")


# --------------------------------------------------------------------------------------------
# Counts, vectors and buffers
# --------------------------------------------------------------------------------------------


def test_too_many_tensors_are_refused_before_any_is_decoded() -> None:
    """10,001 tensors exceed MAX_TENSORS; the count is checked on the vector's length."""
    builder = ModelBuilder()
    for _ in range(10_001):
        builder.tensor((1,))
    assert_refused(
        builder.build([0], [0]),
        r"tensors vector has 10001 entries, more than the 10000",
    )


def test_operator_with_too_many_inputs_is_refused() -> None:
    """An operator's input list is bounded before it becomes Python integers."""
    builder = ModelBuilder()
    x = builder.tensor((1,))
    builder.operator(schema.BuiltinOperator.ADD, [x] * 1001, [x])
    assert_refused(
        builder.build([x], [x]), r"inputs has 1001 entries, more than the 1000"
    )


def test_more_scales_than_channels_are_refused() -> None:
    """Per-channel parameters cannot outnumber the channels (a shared vector copied per tensor)."""
    builder = ModelBuilder()
    x = builder.tensor((4,), schema.TensorType.INT8, quantization=(0.1, 0))
    builder.tensors[x].quantization.scale = [0.1] * 1000
    assert_refused(
        builder.build([x], [x]),
        r"scales of tensor 0 .* has 1000 entries, more than the 4",
    )


def test_buffer_whose_size_does_not_match_the_tensor_is_refused() -> None:
    """A (4,) float constant needs 16 bytes; a 12-byte buffer is named with both sizes."""
    builder = ModelBuilder()
    x = builder.tensor((4,))
    constant = builder.tensor((4,), data=np.ones(3, dtype=np.float32))
    y = builder.tensor((4,))
    builder.operator(
        schema.BuiltinOperator.ADD,
        [x, constant],
        [y],
        (schema.BuiltinOptions.AddOptions, schema.AddOptionsT()),
    )
    assert_refused(
        builder.build([x], [y]),
        r"tensor 1 \('t1'\) of shape \[4\] needs 16 bytes, but buffer 1 holds 12",
    )


def test_external_buffer_out_of_range_is_refused() -> None:
    """Buffer.offset/size pointing past the end of the file is out of range, not read."""
    builder = ModelBuilder()
    x = builder.tensor((4,))
    external = schema.BufferT()
    external.offset, external.size = 1 << 40, 16
    builder.buffers.append(external)
    builder.tensors[x].buffer = len(builder.buffers) - 1
    assert_refused(builder.build([], [x]), r"external data of buffer 1 .* out of range")


def test_random_int32_overwrites_never_exceed_the_budget() -> None:
    """Whatever int32 lands in the tensor and operator tables, loading stays under the cap."""
    content = SHIPPED.read_bytes()
    tables = len(content) - 12_288  # the shipped model stores its weights first
    rng = np.random.default_rng(22)
    worst = 0
    for _ in range(60):
        corrupted = bytearray(content)
        position = int(rng.integers(tables, len(content) - 4)) & ~3
        value = int(rng.choice([0, -1, 2**31 - 1, -(2**31), 1 << 20, 1 << 28]))
        corrupted[position : position + 4] = struct.pack("<i", value)
        with peak_allocation() as peak, contextlib.suppress(TFLiteFormatError):
            NumpyInterpreter(model_content=bytes(corrupted))
        worst = max(worst, peak[0])
    assert worst < MAX_MEMORY_BYTES


# --------------------------------------------------------------------------------------------
# The files the CLI and the integration load
# --------------------------------------------------------------------------------------------


def test_oversized_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A 1 GiB (sparse) file is refused by its size, by path and through the metadata."""
    path = tmp_path / "huge.tflite"
    with path.open("wb") as file:
        file.truncate(1 << 30)
    with (
        peak_allocation() as peak,
        pytest.raises(TFLiteFormatError, match="larger than the 67108864"),
    ):
        NumpyInterpreter(model_path=path)
    assert peak[0] < SMALL


def test_pinned_model_with_an_oversized_file_is_refused(model_copy: Path) -> None:
    """The integration's read (sha256-pinned) checks the size before hashing the bytes."""
    with model_copy.with_suffix(".tflite").open("r+b") as file:
        file.truncate(1 << 30)
    meta = load_metadata(model_copy)
    with (
        peak_allocation() as peak,
        pytest.raises(ModelError, match=r"is 1073741824 bytes, larger than"),
    ):
        meta.read_model()
    assert peak[0] < SMALL


@pytest.mark.parametrize("backend", ["numpy", "litert"])
def test_every_backend_applies_the_caps(model_copy: Path, backend: str) -> None:
    """A crafted model with a matching sha256 is refused by LiteRT's path too, by the caps."""
    write_model(
        model_copy, shipped_with_input_shape((1, 2**31 - 1, 128, 1)), backbone=True
    )
    with pytest.raises(
        ModelError,
        match=rf"cannot load model .* with {backend}: tensor 0 .* of shape "
        r"\[1, 2147483647, 128, 1\]",
    ):
        load_runtime(load_metadata(model_copy), backend)  # type: ignore[arg-type]


def test_cli_model_option_refuses_a_crafted_model(
    model_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--model` loads untrusted files: exit status 2 and the tensor named on stderr."""
    write_model(
        model_copy, shipped_with_input_shape((1, 2**31 - 1, 128, 1)), backbone=True
    )
    wav = write_wav(tmp_path / "x.wav", np.zeros(16000))
    assert main(["scan", "--model", str(model_copy), str(wav)]) == 2
    error = capsys.readouterr().err
    assert f"tensor 0 ('{INPUT_NAME}') of shape [1, 2147483647, 128, 1]" in error


def test_cli_refuses_the_issue_model_without_growing_the_process(
    model_copy: Path, tmp_path: Path
) -> None:
    """Issue 22: an ADD on two 1.7 GB tensors took 3.45 GB at load; the CLI now stays small."""
    builder = ModelBuilder()
    x = builder.tensor((431_250_000,))
    one = builder.tensor((1,), data=np.ones(1, dtype=np.float32))
    y = builder.tensor((431_250_000,))
    builder.operator(
        schema.BuiltinOperator.ADD,
        [x, one],
        [y],
        (schema.BuiltinOptions.AddOptions, schema.AddOptionsT()),
    )
    write_model(model_copy, builder.build([x], [y]))
    wav = write_wav(tmp_path / "x.wav", np.zeros(16000))
    code = (
        "import sys\n"
        "sys.modules['homeassistant'] = None\n"
        "from baby_monitor_engine.cli import main\n"
        f"sys.argv = ['baby-monitor', 'scan', '--model', {str(model_copy)!r}, {str(wav)!r}]\n"
        "status = main()\n"
        # this process's own peak: ru_maxrss would carry over the forking test process's
        "status_lines = open('/proc/self/status').read().splitlines()\n"
        "print(next(l.split()[1] for l in status_lines if l.startswith('VmHWM:')))\n"
        "sys.exit(status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[2],
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "tensor 0 ('t0') of shape [431250000] has 431250000 elements" in done.stderr
    peak_kib = int(done.stdout.split()[-1])
    assert peak_kib < 512 << 10, f"peak RSS {peak_kib} KiB"


def test_shipped_model_loads_and_runs_on_every_backend() -> None:
    """The checks change nothing for the pinned model: numpy and LiteRT still agree."""
    meta = load_metadata(DEFAULT_MODEL)
    windows = (
        np.random.default_rng(0)
        .normal(size=(3, meta.window_frames, meta.frontend.n_mels))
        .astype(np.float32)
    )
    ours = load_runtime(meta, "numpy").predict_many(windows)
    reference = load_runtime(meta, "litert").predict_many(windows)
    np.testing.assert_allclose(ours, reference, atol=1e-4)
