"""Specifications of the pure-numpy TFLite interpreter, checked against LiteRT itself."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from baby_monitor_engine.tflite import (
    SUPPORTED_OPERATORS,
    NumpyInterpreter,
    TFLiteFormatError,
)

# Hand-built models (no TensorFlow needed) are written with LiteRT's own generated schema
# classes, which ship with the ai-edge-litert wheel together with the flatbuffers runtime.
schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
flatbuffers = pytest.importorskip("flatbuffers")
litert = pytest.importorskip("ai_edge_litert.interpreter")

INPUT_SHAPE = (1, 219, 64, 1)
ZOO_SHAPE = (1, 12, 10, 4)
ZOO_OUTPUTS = (
    "add_mul",
    "average_pool_same",
    "batch_matmul",
    "concatenation",
    "conv_dilated_relu6",
    "conv_valid_strided",
    "dense_keep_dims",
    "depthwise_multiplier",
    "logistic",
    "max_pool_valid",
    "mean_keep_dims",
    "pad",
    "reduce_max",
    "reshape",
    "softmax",
    "sum",
    "tanh",
    "transpose",
)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


class ModelBuilder:
    """Write a one-subgraph TFLite flatbuffer by hand, for models a converter will not emit."""

    def __init__(self) -> None:
        """Start an empty model (buffer 0 is the schema's mandatory empty sentinel)."""
        self.codes: list[Any] = []
        self.buffers: list[Any] = [schema.BufferT()]
        self.tensors: list[Any] = []
        self.operators: list[Any] = []
        self.extra_subgraphs: list[Any] = []

    def tensor(
        self,
        shape: Sequence[int],
        tensor_type: int = schema.TensorType.FLOAT32,
        data: npt.NDArray[Any] | None = None,
        quantization: tuple[float, int] | None = None,
    ) -> int:
        """Add a tensor (constant when `data` is given) and return its index."""
        tensor = schema.TensorT()
        tensor.shape = list(shape)
        tensor.type = tensor_type
        tensor.name = f"t{len(self.tensors)}"
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.frombuffer(data.tobytes(), dtype=np.uint8)
            self.buffers.append(buffer)
            tensor.buffer = len(self.buffers) - 1
        if quantization is not None:
            params = schema.QuantizationParametersT()
            params.scale = [quantization[0]]
            params.zeroPoint = [quantization[1]]
            tensor.quantization = params
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def operator(
        self,
        code: int,
        inputs: Sequence[int],
        outputs: Sequence[int],
        options: tuple[int, Any] | None = None,
        custom_code: str | None = None,
    ) -> None:
        """Append an operator; `options` is (BuiltinOptions type, options object)."""
        opcode = schema.OperatorCodeT()
        opcode.builtinCode = code
        opcode.deprecatedBuiltinCode = min(code, 127)
        opcode.version = 1
        opcode.customCode = custom_code
        self.codes.append(opcode)
        operator = schema.OperatorT()
        operator.opcodeIndex = len(self.codes) - 1
        operator.inputs = list(inputs)
        operator.outputs = list(outputs)
        if options is not None:
            operator.builtinOptionsType, operator.builtinOptions = options
        self.operators.append(operator)

    def build(self, inputs: Sequence[int], outputs: Sequence[int]) -> bytes:
        """Serialise the model with the TFL3 file identifier."""
        subgraph = schema.SubGraphT()
        subgraph.tensors = self.tensors
        subgraph.inputs = list(inputs)
        subgraph.outputs = list(outputs)
        subgraph.operators = self.operators
        model = schema.ModelT()
        model.version = 3
        model.operatorCodes = self.codes
        model.subgraphs = [subgraph, *self.extra_subgraphs]
        model.buffers = self.buffers
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def add_model(relu: bool = True, unused_subgraph: bool = False) -> bytes:
    """Input (2, 3) + constant (3,), fused RELU: exercises broadcasting and constant operands.

    `unused_subgraph` adds a second subgraph, like a control-flow body, that uses CUMSUM.
    """
    builder = ModelBuilder()
    x = builder.tensor((2, 3))
    bias = builder.tensor((3,), data=np.array([0.5, -1.0, 2.0], dtype=np.float32))
    y = builder.tensor((2, 3))
    options = schema.AddOptionsT()
    options.fusedActivationFunction = (
        schema.ActivationFunctionType.RELU
        if relu
        else schema.ActivationFunctionType.NONE
    )
    builder.operator(
        schema.BuiltinOperator.ADD,
        [x, bias],
        [y],
        (schema.BuiltinOptions.AddOptions, options),
    )
    if unused_subgraph:
        opcode = schema.OperatorCodeT()
        opcode.builtinCode = schema.BuiltinOperator.CUMSUM
        opcode.deprecatedBuiltinCode = 127
        builder.codes.append(opcode)
        cumsum = schema.OperatorT()
        cumsum.opcodeIndex, cumsum.inputs, cumsum.outputs = (
            len(builder.codes) - 1,
            [0],
            [0],
        )
        body = schema.SubGraphT()
        body.tensors = [schema.TensorT()]
        body.tensors[0].shape = [4]
        body.inputs, body.outputs, body.operators = [0], [0], [cumsum]
        builder.extra_subgraphs.append(body)
    return builder.build([x], [y])


@dataclass(frozen=True, slots=True)
class Operator:
    """One operator of a model's main subgraph, as the file states it."""

    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


OPERATOR_NAMES = {
    code: name
    for name, code in vars(schema.BuiltinOperator).items()
    if not name.startswith("_")
}


def model_operators(content: bytes) -> list[Operator]:
    """List the operators of subgraph 0, read with LiteRT's own schema classes.

    Read from the flatbuffer, not from the engine's parser (which is under test), and not
    from LiteRT's private `_get_ops_details()`.
    """
    model = schema.ModelT.InitFromPackedBuf(content, 0)
    codes = [
        max(code.builtinCode, code.deprecatedBuiltinCode)
        for code in model.operatorCodes
    ]
    return [
        Operator(
            position,
            OPERATOR_NAMES[codes[op.opcodeIndex]],
            tuple(int(i) for i in op.inputs),
            tuple(int(i) for i in op.outputs),
        )
        for position, op in enumerate(model.subgraphs[0].operators)
    ]


def litert_interpreter(content: bytes) -> Any:
    """Load the reference: LiteRT with its default (XNNPACK) kernels, as users run it."""
    interpreter = litert.Interpreter(model_content=content, num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def numpy_interpreter(content: bytes) -> NumpyInterpreter:
    """Load the interpreter under test, allocated."""
    interpreter = NumpyInterpreter(model_content=content)
    interpreter.allocate_tensors()
    return interpreter


def sample(rng: np.random.Generator, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
    """Draw a Gaussian input whose level and spread vary from draw to draw, like real audio."""
    level, spread = rng.uniform(-1.0, 1.0), rng.uniform(0.5, 2.0)
    return (level + spread * rng.standard_normal(shape)).astype(np.float32)


def random_inputs(
    details: list[dict[str, Any]], rng: np.random.Generator
) -> list[npt.NDArray[Any]]:
    """Gaussian inputs of random level and spread, quantised for integer inputs."""
    values = []
    for detail in details:
        value = sample(rng, tuple(detail["shape"]))
        if detail["dtype"] != np.float32:
            scale, zero_point = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            value = np.clip(np.round(value / scale) + zero_point, info.min, info.max)
        values.append(value.astype(detail["dtype"]))
    return values


def run(
    interpreter: Any, inputs: list[npt.NDArray[Any]]
) -> dict[int, npt.NDArray[Any]]:
    """Invoke once; outputs keyed by tensor index."""
    for detail, value in zip(interpreter.get_input_details(), inputs, strict=True):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return {
        d["index"]: interpreter.get_tensor(d["index"])
        for d in interpreter.get_output_details()
    }


def output_steps(reference: Any, content: bytes) -> dict[int, float]:
    """Size of one quantisation step of each output (0.0 for outputs computed in float).

    Integer outputs step by 1; float outputs of a quantised model step by the scale of the
    int8 tensor their DEQUANTIZE reads.
    """
    details = {d["index"]: d for d in reference.get_tensor_details()}
    dequantized = {
        op.outputs[0]: op.inputs[0]
        for op in model_operators(content)
        if op.name == "DEQUANTIZE"
    }
    steps = {}
    for output in reference.get_output_details():
        index = output["index"]
        if output["dtype"] != np.float32:
            steps[index] = 1.0
        elif index in dequantized:
            steps[index] = float(details[dequantized[index]]["quantization"][0])
        else:
            steps[index] = 0.0
    return steps


@dataclass
class Comparison:
    """Per output tensor: worst absolute difference, largest reference magnitude, step, name."""

    worst: dict[int, float]
    magnitude: dict[int, float]
    steps: dict[int, float]
    names: dict[int, str]

    def index(self, name: str) -> int:
        """Tensor index of the signature output `name`."""
        (index,) = [i for i, output in self.names.items() if output == name]
        return index


def compare_with_litert(content: bytes, trials: int = 4, seed: int = 0) -> Comparison:
    """Run both interpreters on the same random inputs and record the largest differences."""
    reference = litert_interpreter(content)
    candidate = numpy_interpreter(content)
    rng = np.random.default_rng(seed)
    worst: dict[int, float] = {}
    magnitude: dict[int, float] = {}
    for _ in range(trials):
        inputs = random_inputs(reference.get_input_details(), rng)
        expected = run(reference, inputs)
        actual = run(candidate, inputs)
        for index, value in expected.items():
            assert actual[index].shape == value.shape
            assert actual[index].dtype == value.dtype
            difference = np.abs(
                actual[index].astype(np.float64) - value.astype(np.float64)
            )
            worst[index] = max(
                worst.get(index, 0.0), float(difference.max(initial=0.0))
            )
            largest = float(np.abs(value.astype(np.float64)).max(initial=0.0))
            magnitude[index] = max(magnitude.get(index, 0.0), largest)
    names: dict[int, str] = {}
    if reference.get_signature_list():
        signature = reference.get_signature_runner().get_output_details()
        names = {detail["index"]: name for name, detail in signature.items()}
    return Comparison(worst, magnitude, output_steps(reference, content), names)


# --------------------------------------------------------------------------------------------
# Models converted from Keras (module scope: converting takes seconds)
# --------------------------------------------------------------------------------------------


@dataclass
class Converted:
    """The .tflite flatbuffers the converter-based specifications share."""

    cnn_float: bytes
    cnn_int8: bytes
    zoo: dict[str, bytes]
    cumsum: bytes


def _build_cnn(keras: Any) -> Any:
    """Build the shipped architecture: depthwise-separable CNN with both pooling heads."""
    layers = keras.layers
    spectrogram = keras.Input(INPUT_SHAPE[1:], batch_size=1, name="spectrogram")
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(spectrogram)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for channels in (32, 64, 64):
        x = layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.Conv2D(channels, 1, use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
    global_average = layers.GlobalAveragePooling2D()(x)
    mean_then_max = keras.ops.max(keras.ops.mean(x, axis=2), axis=1)
    outputs = {
        "global_average": layers.Dense(2, activation="sigmoid")(global_average),
        "mean_then_max": layers.Dense(2, activation="sigmoid")(mean_then_max),
    }
    model = keras.Model(spectrogram, outputs)
    rng = np.random.default_rng(1)
    batch_norms = [
        layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)
    ]
    for layer in batch_norms:  # non-trivial folded scales and shifts
        size = layer.gamma.shape[0]
        layer.gamma.assign(rng.uniform(0.5, 1.5, size))
        layer.beta.assign(rng.normal(0.0, 0.3, size))
        layer.momentum = 0.0
    # One training-mode pass sets the moving statistics to those of real activations, so the
    # signal neither dies out nor explodes through the network.
    model(np.concatenate([sample(rng, INPUT_SHAPE) for _ in range(8)]), training=True)
    for layer in model.layers:
        if isinstance(layer, layers.Dense):  # spread the probabilities over (0, 1)
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel * 4.0, bias + rng.normal(0.0, 0.5, bias.shape)])
    return model


def _build_zoo(keras: Any) -> Any:
    """One model, one output per operator variant worth checking on its own."""
    layers, ops = keras.layers, keras.ops
    image = keras.Input(ZOO_SHAPE[1:], batch_size=1, name="image")
    x = layers.Conv2D(6, 3, padding="same", activation="relu")(image)
    rows = layers.Reshape((12, 40))(image)
    outputs = {
        "add_mul": layers.Multiply()(
            [layers.Add()([x, layers.Conv2D(6, 1)(image)]), layers.Conv2D(6, 1)(image)]
        ),
        "average_pool_same": layers.AveragePooling2D(3, strides=2, padding="same")(x),
        "batch_matmul": ops.matmul(rows, ops.transpose(rows, (0, 2, 1))),
        "concatenation": layers.Concatenate()([x, image]),
        "conv_dilated_relu6": layers.Conv2D(
            3, 3, dilation_rate=2, padding="same", activation="relu6"
        )(image),
        "conv_valid_strided": layers.Conv2D(5, 3, strides=(2, 1), padding="valid")(
            image
        ),
        "dense_keep_dims": layers.Dense(3)(rows),
        "depthwise_multiplier": layers.DepthwiseConv2D(
            3, depth_multiplier=2, padding="valid"
        )(image),
        "logistic": layers.Activation("sigmoid")(layers.Conv2D(2, 1)(image)),
        "max_pool_valid": layers.MaxPooling2D(2)(x),
        "mean_keep_dims": ops.mean(x, axis=(1, 2), keepdims=True),
        "pad": layers.ZeroPadding2D(((1, 2), (0, 1)))(image),
        "reduce_max": ops.max(x, axis=-1),
        "reshape": ops.squeeze(layers.Conv2D(1, 1)(image), axis=-1),
        "softmax": layers.Softmax()(layers.Dense(5)(layers.Flatten()(x))),
        "sum": ops.sum(x, axis=(1, 2)),
        "tanh": layers.Activation("tanh")(x),
        "transpose": ops.transpose(x, (0, 2, 1, 3)),
    }
    assert tuple(sorted(outputs)) == ZOO_OUTPUTS
    return keras.Model(image, outputs)


def _representative(shape: tuple[int, ...]) -> Any:
    def dataset() -> Iterator[list[npt.NDArray[np.float32]]]:
        rng = np.random.default_rng(2)
        for _ in range(16):
            yield [sample(rng, shape)]

    return dataset


@pytest.fixture(scope="module")
def converted() -> Converted:
    """Convert the Keras models once for the whole module."""
    tf = pytest.importorskip("tensorflow")
    keras = tf.keras
    keras.utils.set_random_seed(0)

    def convert(model: Any, kind: str, shape: tuple[int, ...]) -> bytes:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if kind in ("int8", "int8_io"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = _representative(shape)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if kind == "int8_io":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        if kind == "float16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        content: bytes = converter.convert()
        return content

    cnn = _build_cnn(keras)
    zoo = _build_zoo(keras)
    signal = keras.Input((8,), batch_size=1)
    cumsum = keras.Model(signal, keras.ops.cumsum(signal, axis=-1))
    return Converted(
        cnn_float=convert(cnn, "float", INPUT_SHAPE),
        cnn_int8=convert(cnn, "int8_io", INPUT_SHAPE),
        zoo={
            kind: convert(zoo, kind, ZOO_SHAPE) for kind in ("float", "int8", "float16")
        },
        cumsum=convert(cumsum, "float", (1, 8)),
    )


# --------------------------------------------------------------------------------------------
# Agreement with LiteRT
# --------------------------------------------------------------------------------------------


def test_matches_litert_on_depthwise_separable_cnn(converted: Converted) -> None:
    """Float CNN: sigmoid outputs of both heads agree with LiteRT within 1e-4."""
    result = compare_with_litert(converted.cnn_float)
    assert sorted(result.names.values()) == ["global_average", "mean_then_max"]
    assert max(result.worst.values()) < 1e-4


def test_matches_litert_on_int8_depthwise_separable_cnn(converted: Converted) -> None:
    """Full-int8 CNN with int8 input and output: within one quantisation step of LiteRT."""
    candidate = numpy_interpreter(converted.cnn_int8)
    assert candidate.get_input_details()[0]["dtype"] is np.int8
    result = compare_with_litert(converted.cnn_int8)
    assert all(step == 1.0 for step in result.steps.values())
    assert max(result.worst.values()) <= 1.0


@pytest.mark.filterwarnings(
    "ignore:Warning. Enabling `experimental_preserve_all_tensors`"
)
def test_int8_intermediate_tensors_agree_with_litert(converted: Converted) -> None:
    """Every int8 activation of the CNN, not only the output, is within one step of LiteRT."""
    reference = litert.Interpreter(
        model_content=converted.cnn_int8,
        num_threads=1,
        experimental_preserve_all_tensors=True,
    )
    reference.allocate_tensors()
    candidate = numpy_interpreter(converted.cnn_int8)
    operators = model_operators(converted.cnn_int8)
    assert len(operators) >= 10
    rng = np.random.default_rng(5)
    for _ in range(3):
        inputs = random_inputs(reference.get_input_details(), rng)
        run(reference, inputs)
        run(candidate, inputs)
        for op in operators:
            (index,) = op.outputs
            expected = reference.get_tensor(index).astype(np.int64)
            actual = candidate.get_tensor(index).astype(np.int64)
            assert np.abs(actual - expected).max() <= 1, f"{op.name} #{op.index}"


@pytest.mark.parametrize("model", ["cnn_float", "cnn_int8"])
def test_cnn_outputs_depend_on_the_input(converted: Converted, model: str) -> None:
    """The CNN comparisons mean something: outputs vary with the input, off the rails."""
    interpreter = numpy_interpreter(getattr(converted, model))
    rng = np.random.default_rng(3)
    outputs = [
        np.concatenate(
            [
                v.ravel()
                for v in run(
                    interpreter, random_inputs(interpreter.get_input_details(), rng)
                ).values()
            ]
        )
        for _ in range(4)
    ]
    assert len({tuple(output.tolist()) for output in outputs}) == len(outputs)


@pytest.fixture(scope="module")
def zoo_comparisons(converted: Converted) -> dict[str, Comparison]:
    """Compare each variant of the single-operator model once."""
    return {
        kind: compare_with_litert(content) for kind, content in converted.zoo.items()
    }


@pytest.mark.parametrize("kind", ["float", "float16"])
@pytest.mark.parametrize("output", ZOO_OUTPUTS)
def test_float_operator_matches_litert(
    zoo_comparisons: dict[str, Comparison], kind: str, output: str
) -> None:
    """Each float operator variant (float16 weights: DEQUANTIZE folded) agrees with LiteRT."""
    result = zoo_comparisons[kind]
    index = result.index(output)
    assert result.worst[index] <= 1e-5 * max(1.0, result.magnitude[index])


@pytest.mark.parametrize("output", ZOO_OUTPUTS)
def test_int8_operator_matches_litert(
    zoo_comparisons: dict[str, Comparison], output: str
) -> None:
    """Each int8 operator variant, behind QUANTIZE/DEQUANTIZE, is within one step of LiteRT."""
    result = zoo_comparisons["int8"]
    index = result.index(output)
    step = result.steps[index]
    tolerance = step * 1.0001 if step else 1e-5 * max(1.0, result.magnitude[index])
    assert result.worst[index] <= tolerance


def test_converted_models_use_the_expected_operators(converted: Converted) -> None:
    """The models above really exercise the kernels they are meant to cover."""
    used: set[str] = set()
    for content in (converted.cnn_float, converted.cnn_int8, *converted.zoo.values()):
        used |= {op.name for op in model_operators(content)}
    assert used <= SUPPORTED_OPERATORS
    assert {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "MEAN",
        "REDUCE_MAX",
        "SUM",
        "ADD",
        "MUL",
        "LOGISTIC",
        "TANH",
        "SOFTMAX",
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
        "PAD",
        "CONCATENATION",
        "RESHAPE",
        "TRANSPOSE",
        "BATCH_MATMUL",
        "QUANTIZE",
        "DEQUANTIZE",
    } <= used


def test_details_match_litert(converted: Converted) -> None:
    """get_input_details / get_output_details carry LiteRT's names, indices, shapes and types."""
    for content in (converted.cnn_float, converted.cnn_int8):
        reference = litert_interpreter(content)
        candidate = numpy_interpreter(content)
        for ours, theirs in (
            (candidate.get_input_details(), reference.get_input_details()),
            (candidate.get_output_details(), reference.get_output_details()),
        ):
            assert len(ours) == len(theirs)
            for mine, expected in zip(ours, theirs, strict=True):
                assert mine["name"] == expected["name"]
                assert mine["index"] == expected["index"]
                assert mine["dtype"] is expected["dtype"]
                np.testing.assert_array_equal(mine["shape"], expected["shape"])
                assert mine["shape"].dtype == np.int32
                assert mine["quantization"] == pytest.approx(expected["quantization"])
                params = mine["quantization_parameters"]
                np.testing.assert_allclose(
                    params["scales"], expected["quantization_parameters"]["scales"]
                )
                np.testing.assert_array_equal(
                    params["zero_points"],
                    expected["quantization_parameters"]["zero_points"],
                )


def test_rejects_converted_model_with_unsupported_operator(
    converted: Converted,
) -> None:
    """A cumulative sum converts to CUMSUM, which the executor names when refusing it."""
    with pytest.raises(
        TFLiteFormatError, match=r"operator CUMSUM \(builtin 128\) is not supported"
    ):
        NumpyInterpreter(model_content=converted.cumsum)


def test_rejects_truncated_converted_model(converted: Converted) -> None:
    """Cutting a real model anywhere past the header is reported as truncation."""
    content = converted.cnn_float
    for cut in (16, len(content) // 3, len(content) // 2, len(content) - 64):
        with pytest.raises(TFLiteFormatError, match="truncated"):
            NumpyInterpreter(model_content=content[:cut])


# --------------------------------------------------------------------------------------------
# Hand-built models: no TensorFlow needed
# --------------------------------------------------------------------------------------------


def test_operator_names_follow_the_schema() -> None:
    """Error messages use the BuiltinOperator names and numbers of schema.fbs."""
    from baby_monitor_engine.tflite.schema import OPERATOR_NAMES

    for code, name in enumerate(OPERATOR_NAMES):
        assert getattr(schema.BuiltinOperator, name) == code


def test_quantisation_rounds_half_away_from_zero() -> None:
    """Requantisation rounds like C's round(), TFLite's rule, including the float32 edge cases."""
    from baby_monitor_engine.tflite.quantization import QParams, quantizer

    below_half = np.nextafter(np.float32(0.5), np.float32(0))
    rng = np.random.default_rng(6)
    values = np.concatenate(
        [
            np.arange(-6, 6, dtype=np.float32) + np.float32(0.5),  # exact ties
            np.array([below_half, -below_half, 2**23 - 0.5, 2**24, -(2**23) + 0.5]),
            rng.uniform(-300, 300, 10_000),
        ]
    ).astype(np.float32)
    expected = np.sign(values) * np.floor(np.abs(values.astype(np.float64)) + 0.5)
    # Through the public quantizer: scale 1 and zero point 0 leave only the rounding.
    limit = 2**31 - 128  # the largest float32 below 2**31, so that the clamp is exact
    quantize = quantizer(QParams(1.0, 0, np.dtype(np.int32), -limit, limit))
    np.testing.assert_array_equal(quantize(values), expected.astype(np.int32))


def test_add_with_constant_and_fused_relu_matches_litert() -> None:
    """A broadcast constant operand and a fused RELU, compared with LiteRT exactly."""
    result = compare_with_litert(add_model())
    assert max(result.worst.values()) == 0.0


def test_squeeze_and_reshape_from_options_match_litert() -> None:
    """SQUEEZE with squeeze_dims, and RESHAPE whose shape is only in its options."""
    builder = ModelBuilder()
    x = builder.tensor((1, 4, 1, 3))
    squeezed = builder.tensor((1, 4, 3))
    reshaped = builder.tensor((3, 4))
    squeeze = schema.SqueezeOptionsT()
    squeeze.squeezeDims = [2]
    builder.operator(
        schema.BuiltinOperator.SQUEEZE,
        [x],
        [squeezed],
        (schema.BuiltinOptions.SqueezeOptions, squeeze),
    )
    reshape = schema.ReshapeOptionsT()
    reshape.newShape = [-1, 4]
    builder.operator(
        schema.BuiltinOperator.RESHAPE,
        [squeezed],
        [reshaped],
        (schema.BuiltinOptions.ReshapeOptions, reshape),
    )
    result = compare_with_litert(builder.build([x], [reshaped]))
    assert max(result.worst.values()) == 0.0


def test_uint8_quantize_logistic_dequantize_matches_litert() -> None:
    """uint8 kernels (asymmetric, zero point 128) through QUANTIZE, LOGISTIC and DEQUANTIZE."""
    builder = ModelBuilder()
    x = builder.tensor((2, 50))
    q = builder.tensor((2, 50), schema.TensorType.UINT8, quantization=(0.05, 128))
    s = builder.tensor((2, 50), schema.TensorType.UINT8, quantization=(1 / 256, 0))
    y = builder.tensor((2, 50))
    builder.operator(schema.BuiltinOperator.QUANTIZE, [x], [q])
    builder.operator(schema.BuiltinOperator.LOGISTIC, [q], [s])
    builder.operator(schema.BuiltinOperator.DEQUANTIZE, [s], [y])
    result = compare_with_litert(builder.build([x], [y]))
    assert max(result.worst.values()) <= 1 / 256 * 1.0001


def test_loads_from_path_like_litert(tmp_path: Path) -> None:
    """model_path and model_content load the same model."""
    path = tmp_path / "add.tflite"
    path.write_bytes(add_model())
    from_path = NumpyInterpreter(model_path=path)
    from_path.allocate_tensors()
    x = np.array([[1.0, 2.0, -3.0], [-1.0, 0.0, 1.0]], dtype=np.float32)
    (index,) = [d["index"] for d in from_path.get_input_details()]
    from_path.set_tensor(index, x)
    from_path.invoke()
    (output,) = [d["index"] for d in from_path.get_output_details()]
    np.testing.assert_array_equal(
        from_path.get_tensor(output), np.maximum(x + np.array([0.5, -1.0, 2.0]), 0)
    )


def test_requires_a_model() -> None:
    """Neither a path nor content is a usage error."""
    with pytest.raises(ValueError, match="model_path or model_content"):
        NumpyInterpreter()


def test_rejects_unsupported_operator_by_name() -> None:
    """SPLIT is a valid builtin the executor does not implement: the message names it."""
    builder = ModelBuilder()
    axis = builder.tensor((), schema.TensorType.INT32, data=np.array(0, dtype=np.int32))
    x = builder.tensor((4,))
    halves = [builder.tensor((2,)), builder.tensor((2,))]
    options = schema.SplitOptionsT()
    options.numSplits = 2
    builder.operator(
        schema.BuiltinOperator.SPLIT,
        [axis, x],
        halves,
        (schema.BuiltinOptions.SplitOptions, options),
    )
    with pytest.raises(
        TFLiteFormatError,
        match=r"operator SPLIT \(builtin 49\) is not supported by the numpy executor",
    ):
        NumpyInterpreter(model_content=builder.build([x], halves))


def test_rejects_custom_operator_by_name() -> None:
    """Custom operators are reported with their custom code."""
    builder = ModelBuilder()
    x = builder.tensor((4,))
    y = builder.tensor((4,))
    builder.operator(schema.BuiltinOperator.CUSTOM, [x], [y], custom_code="MyFancyOp")
    with pytest.raises(TFLiteFormatError, match="custom operator 'MyFancyOp'"):
        NumpyInterpreter(model_content=builder.build([x], [y]))


def test_rejects_unsupported_tensor_type() -> None:
    """String tensors cannot be held by the executor; the tensor and type are named."""
    builder = ModelBuilder()
    x = builder.tensor((4,), schema.TensorType.STRING)
    with pytest.raises(TFLiteFormatError, match=r"tensor 0 .* type STRING \(5\)"):
        NumpyInterpreter(model_content=builder.build([x], [x]))


def test_runs_subgraph_zero_and_ignores_the_others() -> None:
    """Other subgraphs, reachable only through unsupported control flow, are not parsed."""
    with_extra = numpy_interpreter(add_model(unused_subgraph=True))
    plain = numpy_interpreter(add_model())
    value = np.arange(6, dtype=np.float32).reshape(2, 3) - 3
    np.testing.assert_array_equal(run(with_extra, [value])[2], run(plain, [value])[2])


def test_reads_buffers_stored_outside_the_flatbuffer() -> None:
    """Buffer.offset/size (models over 2 GB) point at data appended after the flatbuffer."""
    builder = ModelBuilder()
    x = builder.tensor((3,))
    constant = builder.tensor((3,))
    y = builder.tensor((3,))
    external = schema.BufferT()
    external.offset = 1  # placeholder of the same width, patched below
    external.size = 12
    builder.buffers.append(external)
    builder.tensors[constant].buffer = len(builder.buffers) - 1
    options = schema.AddOptionsT()
    builder.operator(
        schema.BuiltinOperator.ADD,
        [x, constant],
        [y],
        (schema.BuiltinOptions.AddOptions, options),
    )
    content = builder.build([x], [y])
    padding = -len(content) % 16
    offset = len(content) + padding
    external.offset = offset
    content = builder.build([x], [y])
    assert len(content) + padding == offset
    data = np.array([10.0, 20.0, 30.0], dtype="<f4").tobytes()
    interpreter = numpy_interpreter(content + b"\0" * padding + data)
    outputs = run(interpreter, [np.ones(3, dtype=np.float32)])
    np.testing.assert_array_equal(outputs[y], [11.0, 21.0, 31.0])


@pytest.mark.parametrize(
    "content",
    [
        np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        b"# Baby monitor settings\nthreshold: 0.8\nlabels: [crying, laughter]\n",
        b"\x1c\x00\x00\x00TFL2" + bytes(64),
    ],
    ids=["random-bytes", "text-file", "other-identifier"],
)
def test_rejects_files_without_the_tflite_identifier(content: bytes) -> None:
    """Anything not carrying "TFL3" at bytes 4..8 is refused before parsing."""
    with pytest.raises(TFLiteFormatError, match="identifier"):
        NumpyInterpreter(model_content=content)


def test_rejects_file_too_short_to_be_a_model() -> None:
    """A few bytes cannot even hold the header."""
    with pytest.raises(TFLiteFormatError, match="too short"):
        NumpyInterpreter(model_content=b"TFL3")


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.8, 0.95])
def test_rejects_truncated_model(fraction: float) -> None:
    """Offsets past the end of a truncated file are reported as out of range / truncated."""
    content = add_model()
    with pytest.raises(TFLiteFormatError, match=r"out of range.*truncated"):
        NumpyInterpreter(model_content=content[: int(len(content) * fraction)])


def test_corrupted_models_fail_with_format_errors_only() -> None:
    """Random byte corruption never escapes as IndexError, struct.error, etc."""
    content = add_model()
    rng = np.random.default_rng(4)
    for _ in range(300):
        corrupted = bytearray(content)
        for position in rng.integers(8, len(content), 3):
            corrupted[position] = int(rng.integers(0, 256))
        with contextlib.suppress(TFLiteFormatError):
            NumpyInterpreter(model_content=bytes(corrupted))


# --------------------------------------------------------------------------------------------
# Interpreter API
# --------------------------------------------------------------------------------------------


def test_set_tensor_rejects_wrong_shape_naming_both() -> None:
    """A wrong shape is refused with the expected and the received shape."""
    interpreter = numpy_interpreter(add_model())
    index = interpreter.get_input_details()[0]["index"]
    with pytest.raises(ValueError, match=r"expected shape \(2, 3\), got \(3, 2\)"):
        interpreter.set_tensor(index, np.zeros((3, 2), dtype=np.float32))


def test_set_tensor_rejects_wrong_dtype_naming_both() -> None:
    """A wrong dtype is refused with the expected and the received dtype."""
    interpreter = numpy_interpreter(add_model())
    index = interpreter.get_input_details()[0]["index"]
    with pytest.raises(ValueError, match="expected dtype float32, got float64"):
        interpreter.set_tensor(index, np.zeros((2, 3), dtype=np.float64))


def test_set_tensor_rejects_tensors_that_are_not_inputs() -> None:
    """Only model inputs can be written."""
    interpreter = numpy_interpreter(add_model())
    output = interpreter.get_output_details()[0]["index"]
    with pytest.raises(ValueError, match="not a model input"):
        interpreter.set_tensor(output, np.zeros((2, 3), dtype=np.float32))


def test_invoke_requires_allocate_tensors() -> None:
    """Like LiteRT, tensors must be allocated first, so code written against one runs on both."""
    interpreter = NumpyInterpreter(model_content=add_model())
    with pytest.raises(RuntimeError, match="allocate_tensors"):
        interpreter.invoke()


def test_get_tensor_returns_a_copy() -> None:
    """Mutating a returned array does not change the interpreter's state."""
    interpreter = numpy_interpreter(add_model(relu=False))
    (x,) = [d["index"] for d in interpreter.get_input_details()]
    (y,) = [d["index"] for d in interpreter.get_output_details()]
    value = np.ones((2, 3), dtype=np.float32)
    interpreter.set_tensor(x, value)
    value[...] = 100.0  # set_tensor copied too
    interpreter.invoke()
    first = interpreter.get_tensor(y)
    first[...] = -1.0
    np.testing.assert_array_equal(interpreter.get_tensor(y), [[1.5, 0.0, 3.0]] * 2)
