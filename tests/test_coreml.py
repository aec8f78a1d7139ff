"""The Core ML export: named image input, class labels, metadata, deployment target, and the
compression ops present when asked for (read back from the saved package)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import group

from compress.core.errors import ConfigError
from compress.coreml import convert as coreml
from compress.coreml import package as coreml_package
from compress.data.fashion_mnist import CLASS_NAMES
from compress.training.students import build_student


@pytest.fixture(scope="module")
def student():
    model = build_student(group("student", width=0.125, head="flatten", dropout=0.1))
    kernel = model.get_layer("fc").kernel
    kernel.assign(np.where(np.abs(kernel.numpy()) < np.median(np.abs(kernel.numpy())), 0, kernel.numpy()))
    return model


def test_package_is_made_for_an_app_developer(tmp_path, student):
    path = coreml.to_mlpackage(student, tmp_path / "m.mlpackage", metadata={"test_accuracy": "0.9"})
    import coremltools as ct

    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    (inp,) = spec.description.input
    assert inp.name == "image" and inp.type.WhichOneof("Type") == "imageType"
    assert (inp.type.imageType.width, inp.type.imageType.height) == (28, 28)
    assert inp.type.imageType.colorSpace == ct.proto.FeatureTypes_pb2.ImageFeatureType.GRAYSCALE
    assert list(spec.mlProgram.functions) == ["main"]
    labels = list(spec.description.output)
    assert [o.name for o in labels][0] == "classLabel"
    assert spec.description.predictedFeatureName == "classLabel"
    meta = spec.description.metadata
    assert meta.author and meta.shortDescription
    assert meta.userDefined["test_accuracy"] == "0.9" and meta.userDefined["minimum_deployment_target"] == "iOS16"
    assert meta.userDefined["class_labels"].split(",") == list(CLASS_NAMES)
    assert spec.specificationVersion >= 7  # iOS16
    assert not (tmp_path / "m.partial.mlpackage").exists()


@pytest.mark.parametrize("compression, op", [("palettize4", "constexpr_lut_to_dense"),
                                             ("linear8", "constexpr_affine_dequantize"),
                                             ("sparse", "constexpr_sparse_to_dense")])
@pytest.mark.slow
def test_compression_ops_are_in_the_saved_program(tmp_path, student, compression, op):
    plain = coreml.to_mlpackage(student, tmp_path / "plain.mlpackage")
    packed = coreml.to_mlpackage(student, tmp_path / f"{compression}.mlpackage", compression=compression)
    assert op in coreml_package.program_ops(packed) and op not in coreml_package.program_ops(plain)
    if compression != "sparse":
        assert coreml_package.package_bytes(packed) < coreml_package.package_bytes(plain)


def test_unknown_compression_is_refused(tmp_path, student):
    with pytest.raises(ConfigError, match="coreml.compression=int3: allowed none, linear8"):
        coreml.to_mlpackage(student, tmp_path / "x.mlpackage", compression="int3")
    assert not (tmp_path / "x.mlpackage").exists()
