"""Generation benchmark: load time, time-to-first-token, decode speed, turn-20 latency.

    python bench/generation.py                       # SmolLM2 on the GGUF engine
    python bench/generation.py --model qwen2.5-coder-0.5b-instruct --samples
    python bench/generation.py --engine transformers --json out.json
    python bench/generation.py --model llamacpp:smollm2-135m-instruct

What it measures, greedy, on the model as ``load_llm`` loads it with ``--engine``
(a registry model is fetched first if needed):

- ``import companion`` time (target < 0.3 s) and that it does not import torch;
- load time in a fresh process (cold: imports + first load) and a second load (warm);
- on the transformers backend (``--engine transformers``: a GGUF dequantized in
  memory), TTFT and decode tokens/s through the project's backend and through
  plain ``model.generate()`` on the same weights and prompt, and their ratio
  (target: the backend within 5% of ``generate``);
- TTFT at turn 20 of a conversation (19 exchanges generated first) with prefix
  KV reuse (target < 300 ms) and without it;
- with ``--samples``, replies to a few companion-style prompts;
- with ``--baseline``, llama.cpp against the project's backend (below).

``--baseline`` runs llama.cpp (llama-cpp-python) on the registry model's GGUF,
the GGUF engine on that same file, and ("ours") the project's transformers
backend on that same file dequantized in memory: same prompt, greedy,
``--new-tokens`` tokens, each engine in a fresh process per thread count (so its
peak RSS is its own). It prints load time, TTFT, decode tok/s and
peak RSS, and the ratios ours / llama.cpp against the targets (decode >= 0.7x,
RSS <= 1.5x). ``--threads 2,1`` measures both settings in one run; ``--busy N``
keeps N single-threaded neighbour processes busy (numpy matmuls, standing in for
speech recognition or synthesis) while the replies are timed; ``--quantize`` is
passed to the project's loader (int8/int4 need a folder of safetensors, so for a
registry model only "none" and "auto" load)::

    python bench/generation.py --baseline --model qwen2.5-coder-0.5b-instruct --threads 2,1
    python bench/generation.py --baseline --threads 2,1 --busy 1

Numbers on a shared machine are noisy: each timing is the median of ``--repeat``
runs, and the load average at the start is printed so a busy machine shows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from companion.llm.fetch import fetch_gguf
from companion.llm.gguf.backend import GGUFBackend
from companion.llm.llamacpp_backend import LlamaCppLLM
from companion.llm.loader import load_llm
from companion.llm.registry import load_registry
from companion.llm.torchenv import import_torch
from companion.llm.transformers_backend import TransformersLLM
from companion.types import GenerationParams, Message

Backend = TransformersLLM | LlamaCppLLM | GGUFBackend
#: "gguf": the GGUF engine on the file's own blocks (companion.llm.gguf);
#: "ours": the transformers backend on the same file, dequantized in memory.
ENGINES = ("llama.cpp", "gguf", "ours")
#: A neighbour process: one core of numpy matmuls (like an ONNX speech model's work).
_BUSY = (
    "import numpy as np\n"
    "a = np.random.default_rng(0).random((384, 384), dtype=np.float32)\n"
    "while True:\n"
    "    a @ a\n"
)

PERSONA = (
    "You are Samantha, a warm, curious and playful companion. You talk like a close "
    "friend: short, natural replies, one question at a time. You remember what the "
    "user tells you."
)
STORY = [
    Message("system", PERSONA),
    Message("user", "Tell me a long story about a lighthouse keeper and her cat."),
]
USER_TURNS = [
    "Hi, I'm Theo. I just moved to Boston for a new job as a nurse.",
    "The night shifts are hard, but I like my patients.",
    "My sister Amy lives in Chicago. I miss her.",
    "I have a dog called Biscuit. He hates the snow.",
    "Do you like music? I've been listening to a lot of jazz.",
    "I'm thinking of learning the piano.",
    "Work was rough today. We lost a patient.",
    "Thanks. Talking helps.",
    "What would you do on a free Sunday in Boston?",
    "I tried a new coffee place near the harbour.",
    "My mom keeps calling to ask if I'm eating well.",
    "I am, mostly. Lots of noodles.",
    "Biscuit chewed my favourite shoes.",
    "I might adopt a second dog. Bad idea?",
    "My colleague Priya invited me to a party on Friday.",
    "I'm nervous, I don't know many people here.",
    "Maybe I'll bring a cake. Any ideas?",
    "Lemon cake it is.",
    "It's late. I should sleep soon.",
    "What do you remember about me?",
]
SAMPLES = [
    [Message("system", PERSONA), Message("user", USER_TURNS[0])],
    [
        Message("system", PERSONA),
        Message("user", USER_TURNS[0]),
        Message("assistant", "Welcome to Boston, Theo! How are you settling in?"),
        Message("user", "Pretty well. My dog Biscuit loves the parks here."),
        Message("assistant", "Biscuit sounds like a happy pup. What kind of dog is he?"),
        Message("user", "What do you remember about me?"),
    ],
    [Message("system", PERSONA), Message("user", "I had a rough day at work. We lost a patient.")],
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument(
        "--threads",
        type=_thread_list,
        default=[os.cpu_count() or 1],
        help="threads; a list such as 2,1 for --baseline (other modes use the first)",
    )
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument(
        "--prompt-tokens", type=int, default=0,
        help="with --baseline: a prompt of about this many tokens (a diary read to her) "
        "instead of the short story request, to time prompt reading",
    )
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--reply-tokens", type=int, default=48, help="per simulated reply")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--samples", action="store_true", help="print companion-style replies")
    parser.add_argument("--skip-turns", action="store_true", help="skip the turn-20 test")
    parser.add_argument("--skip-speed", action="store_true", help="skip load and speed tests")
    parser.add_argument(
        "--note",
        action="store_true",
        help="turn-20 test with a per-turn private system note before each user message",
    )
    parser.add_argument(
        "--baseline", action="store_true", help="llama.cpp against the project's backend"
    )
    parser.add_argument(
        "--busy", type=int, default=0, help="busy neighbour processes while timing (--baseline)"
    )
    parser.add_argument(
        "--quantize",
        choices=["none", "int8", "int4", "auto"],
        help="passed to the project's loader (--baseline)",
    )
    parser.add_argument(
        "--engine", choices=["auto", "gguf", "transformers"], default="auto",
        help="how load_llm runs a registry model or a .gguf file (not --baseline)",
    )
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument(
        "--engines", type=lambda t: [e for e in t.split(",") if e], default=list(ENGINES),
        help="with --baseline: which of llama.cpp,gguf,ours (default all; llama.cpp always)",
    )
    parser.add_argument("--child-load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-engine", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_load:
        return _child_load(args.model, args.threads[0], args.engine)
    if args.child_engine:
        return _child_engine(args)
    if args.baseline:
        return _baseline(args)
    args.threads = args.threads[0]

    torch = import_torch()  # before any other torch import: it sets OMP_WAIT_POLICY
    import transformers

    results: dict[str, Any] = {
        "model": args.model, "engine": args.engine, "threads": args.threads
    }
    results["machine"] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "load_average": os.getloadavg()[0],
    }
    _print_machine(results["machine"], args.threads)

    results["import_companion_s"] = _import_time()
    print(f"import companion        {results['import_companion_s'] * 1000:7.0f} ms (target < 300)")

    # Fetch first if needed, so the subprocess measures a plain load.
    llm = load_llm(args.model, threads=args.threads, engine=args.engine)
    assert isinstance(llm, Backend), "benchmark a local model, not the fake"
    if not args.skip_speed:
        child = _run_child(args.model, args.threads, args.engine)
        results["load"] = child
        print(
            f"load, fresh process     {child['load_s']:7.2f} s  (+ {child['import_s']:.2f} s "
            f"importing torch/transformers); second load {child['load2_s']:.2f} s; "
            f"RSS {child['rss_mb']:.0f} MB"
        )
        if isinstance(llm, TransformersLLM):
            results["speed"] = _compare_with_generate(llm, args.new_tokens, args.repeat)
            _print_speed(results["speed"])
        else:
            print(f"no model.generate() to compare {type(llm).__name__} with "
                  "(--engine transformers has one)")

    if not args.skip_turns:
        results["turns"] = _turn_latency(
            llm, args.turns, args.reply_tokens, args.repeat, note=args.note
        )
        t = results["turns"]
        print(
            f"turn {args.turns} TTFT ({t['layout']} layout), prefix reuse "
            f"{t['ttft_reuse_s'] * 1000:7.0f} ms (target < 300; "
            f"{t['reused_tokens']}/{t['prompt_tokens']} prompt tokens reused)"
        )
        print(f"turn {args.turns} TTFT, no reuse {t['ttft_cold_s'] * 1000:7.0f} ms")

    if args.samples:
        results["samples"] = _samples(llm)
    results["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


# -- measurements ----------------------------------------------------------------


def _import_time() -> float:
    code = "import time; t = time.perf_counter(); import companion, sys; " + (
        "print(time.perf_counter() - t, 'torch' in sys.modules)"
    )
    times = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        if out[1] == "True":
            print("WARNING: import companion imported torch")
        times.append(float(out[0]))
    return statistics.median(times)


def _run_child(model: str, threads: int, engine: str) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child-load", "--model", model, "--threads", str(threads),
           "--engine", engine]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def _child_load(model: str, threads: int, engine: str) -> int:
    started = time.perf_counter()
    import_torch()
    import transformers  # noqa: F401

    imported = time.perf_counter()
    load_llm(model, threads=threads, engine=engine)
    loaded = time.perf_counter()
    load_llm(model, threads=threads, engine=engine)
    again = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "import_s": imported - started,
                "load_s": loaded - imported,
                "load2_s": again - loaded,
                "rss_mb": rss,
            }
        )
    )
    return 0


def _timed_stream(
    llm: Backend, messages: list[Message], params: GenerationParams
) -> dict[str, Any]:
    start = time.perf_counter()
    first = last = None
    chunks = []
    for chunk in llm.stream(messages, params):
        last = time.perf_counter()
        first = first or last
        chunks.append(chunk)
    stats = llm.last_stats
    assert stats is not None and first is not None and last is not None
    n = stats.generated_tokens
    return {
        "ttft_s": first - start,
        "tokens": n,
        "tok_s": (n - 1) / (last - first) if n > 1 and last > first else 0.0,
        "text": "".join(chunks),
    }


def _timed_generate(
    llm: TransformersLLM, messages: list[Message], new_tokens: int
) -> dict[str, float]:
    import torch
    from transformers.generation.streamers import BaseStreamer

    ids = llm.prompt_ids(messages)
    stamps: list[float] = []

    class Clock(BaseStreamer):
        def put(self, value: Any) -> None:
            stamps.append(time.perf_counter())

        def end(self) -> None:
            pass

    input_ids = torch.tensor([ids])
    with torch.inference_mode():
        start = time.perf_counter()
        out = llm.model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=new_tokens,
            do_sample=False,
            streamer=Clock(),
            pad_token_id=llm.tokenizer.eos_token_id,
        )
    n = out.shape[1] - len(ids)
    # put() is called once with the prompt, then once per new token.
    first, last = stamps[1], stamps[-1]
    return {
        "ttft_s": first - start,
        "tokens": n,
        "tok_s": (n - 1) / (last - first) if n > 1 and last > first else 0.0,
    }


def _compare_with_generate(llm: TransformersLLM, new_tokens: int, repeat: int) -> dict[str, Any]:
    params = GenerationParams(max_tokens=new_tokens, temperature=0.0)
    llm.reuse_prefix = False  # both sides prefill the whole prompt
    _timed_stream(llm, STORY, GenerationParams(max_tokens=8, temperature=0.0))  # warm-up
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(_timed_stream(llm, STORY, params))
        theirs.append(_timed_generate(llm, STORY, new_tokens))
    llm.reuse_prefix = True

    def median(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    keys = ("ttft_s", "tok_s", "tokens")
    backend = {k: median(ours, k) for k in keys}
    generate = {k: median(theirs, k) for k in keys}
    return {
        "prompt_tokens": len(llm.prompt_ids(STORY)),
        "backend": backend,
        "generate": generate,
        "decode_ratio": backend["tok_s"] / generate["tok_s"],
    }


def _turn_latency(
    llm: Backend, turns: int, reply_tokens: int, repeat: int, *, note: bool = False
) -> dict[str, Any]:
    """Play ``turns - 1`` exchanges, then time the first token of the last turn.

    With ``note``, each prompt carries a private system note just before the new
    user message (as ``companion.prompt`` lays prompts out); the note changes
    every turn and is not kept in the history.
    """
    reply_params = GenerationParams(max_tokens=reply_tokens, temperature=0.0)
    history = [Message("system", PERSONA)]

    def prompt(turn: int) -> list[Message]:
        extra = [Message("system", _note(turn))] if note else []
        return [*history, *extra, Message("user", USER_TURNS[turn])]

    llm.reset()
    for turn in range(turns - 1):
        reply = "".join(llm.stream(prompt(turn), reply_params)).strip()
        history.extend([Message("user", USER_TURNS[turn]), Message("assistant", reply)])
    last = prompt(turns - 1)
    previous = history[:-2]
    first_token = GenerationParams(max_tokens=1, temperature=0.0)

    def ttft(reuse: bool) -> tuple[float, int]:
        nonlocal history
        times = []
        for _ in range(repeat):
            if reuse:  # the state after the previous turn: its prompt and reply in the cache
                llm.reset()
                full, history = history, previous
                "".join(llm.stream(prompt(turns - 2), reply_params))
                history = full
            llm.reuse_prefix = reuse
            start = time.perf_counter()
            "".join(llm.stream(last, first_token))
            times.append(time.perf_counter() - start)
        llm.reuse_prefix = True
        stats = llm.last_stats
        assert stats is not None
        return statistics.median(times), stats.reused_tokens

    with_reuse, reused = ttft(True)
    without, _ = ttft(False)
    return {
        "layout": "note" if note else "plain",
        "prompt_tokens": len(llm.prompt_ids(last)),
        "reused_tokens": reused,
        "ttft_reuse_s": with_reuse,
        "ttft_cold_s": without,
    }


def _note(turn: int) -> str:
    """A private note like companion.prompt's: clock and recalled facts, new every turn."""
    facts = "\n".join(f"- {t}" for t in USER_TURNS[max(0, turn - 5) : turn]) or "- nothing yet"
    return (
        f"(Private notes for the assistant.) It is 21:{turn:02d} on Friday.\n"
        f"Things you remember about the user that may matter now:\n{facts}"
    )


def _samples(llm: Backend) -> list[dict[str, Any]]:
    params = GenerationParams(max_tokens=96, temperature=0.0)
    rows = []
    for messages in SAMPLES:
        llm.reset()
        row = _timed_stream(llm, messages, params)
        print(
            f"\n> {messages[-1].content}\n{row['text'].strip()}\n"
            f"  [TTFT {row['ttft_s'] * 1000:.0f} ms, {row['tok_s']:.1f} tok/s]"
        )
        rows.append({"prompt": messages[-1].content, **row})
    return rows


# -- llama.cpp baseline ----------------------------------------------------------


def _baseline(args: argparse.Namespace) -> int:
    """Each engine, for each thread count, in a fresh process; then the table and ratios."""
    entry = load_registry().get(args.model)
    if entry is None:
        sys.exit(f"--baseline needs a registry model name, not {args.model!r}")
    fetch_gguf(entry)  # every engine reads the same file; fetch it once, before timing
    machine = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "python": platform.python_version(),
        "load_average": os.getloadavg()[0],
    }
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gb']:.1f} GB RAM, "
        f"Python {machine['python']}, load average {machine['load_average']:.2f}"
    )
    print(
        f"model {args.model} ({entry.file}); greedy, "
        f"{args.new_tokens} new tokens, median of {args.repeat}; "
        f"busy neighbours: {args.busy}; quantize (ours): {args.quantize or 'default'}"
    )
    rows = []
    for threads in args.threads:
        for engine in args.engines:
            cmd = [
                sys.executable, __file__, "--child-engine", engine, "--model", args.model,
                "--threads", str(threads), "--new-tokens", str(args.new_tokens),
                "--prompt-tokens", str(args.prompt_tokens),
                "--repeat", str(args.repeat), "--busy", str(args.busy),
            ]  # fmt: skip
            if args.quantize:
                cmd += ["--quantize", args.quantize]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{engine} with {threads} threads failed:\n{done.stderr[-2000:]}")
                return 1
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    _print_baseline(rows, args.threads)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({"machine": machine, "model": args.model, "rows": rows}, out, indent=2)
    return 0


def _child_engine(args: argparse.Namespace) -> int:
    """One engine in this fresh process: load, warm up, time greedy replies; print JSON."""
    threads = args.threads[0]
    note = ""
    started = time.perf_counter()
    llm: Backend
    if args.child_engine == "llama.cpp":
        from companion.llm.llamacpp_backend import import_llama_cpp

        import_llama_cpp()
        imported = time.perf_counter()
        entry = load_registry().get(args.model)
        assert entry is not None
        llm = LlamaCppLLM(fetch_gguf(entry), name=args.model, threads=threads)
    elif args.child_engine == "gguf":
        imported = time.perf_counter()
        entry = load_registry().get(args.model)
        assert entry is not None
        llm = GGUFBackend(fetch_gguf(entry), name=args.model, threads=threads)
        note = f"GGUF {entry.size / 1e9:.2f} GB"
    else:
        import_torch()
        import transformers  # noqa: F401

        imported = time.perf_counter()
        extra: dict[str, Any] = {"quantize": args.quantize} if args.quantize else {}
        # The registry model's GGUF, dequantized in memory by transformers.
        loaded = load_llm(
            args.model, threads=threads, engine="transformers", progress=lambda _: None, **extra
        )
        assert isinstance(loaded, TransformersLLM)
        llm = loaded
        linear = set(llm.weight_kinds())
        note += "weights: " + "+".join(sorted(linear))
    load_s = time.perf_counter() - imported
    llm.reuse_prefix = False  # every run prefills the whole prompt
    story = _long_prompt(llm, args.prompt_tokens) if args.prompt_tokens else STORY
    _timed_stream(llm, story, GenerationParams(max_tokens=8, temperature=0.0))  # warm-up
    params = GenerationParams(max_tokens=args.new_tokens, temperature=0.0)
    with _neighbours(args.busy):
        runs = [_timed_stream(llm, story, params) for _ in range(args.repeat)]
    row = {
        "engine": args.child_engine,
        "threads": threads,
        "busy": args.busy,
        "import_s": imported - started,
        "load_s": load_s,
        "prompt_tokens": len(llm.prompt_ids(story)),
        "ttft_s": statistics.median(r["ttft_s"] for r in runs),
        "tok_s": statistics.median(r["tok_s"] for r in runs),
        "tokens": runs[0]["tokens"],
        "rss_gb": _peak_rss_gb(),
        "text": runs[0]["text"],
        "note": note,
    }
    print(json.dumps(row))
    return 0


DIARY = [
    "Monday I woke up early and walked Biscuit along the river before work.",
    "The night shift was quiet until two, then three patients came in at once.",
    "Amy called from Chicago; her new apartment has a tiny kitchen and a huge window.",
    "On Tuesday I tried the bakery on Hanover Street and bought far too many rolls.",
    "My manager asked whether I would train the two new nurses next month.",
    "Wednesday it snowed, and Biscuit refused to go further than the corner.",
    "I finished the book about the lighthouse keeper and cried at the ending.",
    "Thursday I forgot my badge and had to wait twenty minutes at the front desk.",
    "Dad sent a photo of his tomatoes, which somehow survived the first frost.",
    "Friday night we had a power cut and I played cards by candlelight with the neighbours.",
    "Saturday I slept until noon, then cleaned the whole flat and felt very proud.",
    "Sunday I cooked soup for the week and thought about learning the guitar again.",
]


def _long_prompt(llm: Backend, tokens: int) -> list[Message]:
    """STORY's persona and a diary read to her, of at least ``tokens`` prompt tokens
    (the same text for every engine: they share the GGUF's tokenizer)."""
    lines: list[str] = []
    while True:
        lines.append(DIARY[len(lines) % len(DIARY)])
        messages = [STORY[0], Message("user", "Here is my week. " + " ".join(lines)
                                      + " What do you make of it?")]
        if len(llm.prompt_ids(messages)) >= tokens:
            return messages


@contextlib.contextmanager
def _neighbours(count: int) -> Iterator[None]:
    """``count`` processes spinning one core each on numpy matmuls while the block runs."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    procs = [subprocess.Popen([sys.executable, "-c", _BUSY], env=env) for _ in range(count)]
    try:
        if procs:
            time.sleep(1.0)  # numpy imported, the loop running
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def _thread_list(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("threads: positive integers, e.g. 2 or 2,1")
    return values


def _peak_rss_gb() -> float:
    """This process's peak resident memory (VmHWM), in GB."""
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def _ram_gb() -> float:
    try:
        with open("/proc/meminfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return 0.0


# -- printing --------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _print_machine(machine: dict[str, Any], threads: int) -> None:
    print(
        f"machine: {machine['cpu']}, {machine['cores']} cores ({threads} threads used), "
        f"Python {machine['python']}, torch {machine['torch']}, "
        f"transformers {machine['transformers']}, load average {machine['load_average']:.2f}"
    )


def _print_speed(speed: dict[str, Any]) -> None:
    row: Callable[[str, dict[str, float]], str] = lambda label, r: (  # noqa: E731
        f"{label:<24}TTFT {r['ttft_s'] * 1000:6.0f} ms   decode {r['tok_s']:6.1f} tok/s "
        f"({r['tokens']:.0f} tokens)"
    )
    print(f"prompt: {speed['prompt_tokens']} tokens, greedy")
    print(row("backend (stream)", speed["backend"]))
    print(row("model.generate()", speed["generate"]))
    print(f"decode speed, backend / generate: {speed['decode_ratio']:.3f} (target >= 0.95)")


def _print_baseline(rows: list[dict[str, Any]], thread_counts: list[int]) -> None:
    tokens = {r["engine"]: r["prompt_tokens"] for r in rows}
    print("prompt tokens: " + ", ".join(f"{e} {n}" for e, n in tokens.items()))
    print(
        f"\n{'engine':<10}{'threads':>8}{'busy':>6}{'import s':>10}{'load s':>8}"
        f"{'TTFT ms':>9}{'decode tok/s':>14}{'peak RSS GB':>13}  note"
    )
    for r in rows:
        print(
            f"{r['engine']:<10}{r['threads']:>8}{r['busy']:>6}{r['import_s']:>10.2f}"
            f"{r['load_s']:>8.2f}{r['ttft_s'] * 1000:>9.0f}{r['tok_s']:>14.1f}"
            f"{r['rss_gb']:>13.2f}  {r['note']}"
        )
    print()
    for threads in thread_counts:
        pair = {r["engine"]: r for r in rows if r["threads"] == threads}
        base = pair["llama.cpp"]
        for name in ("gguf", "ours"):
            if name not in pair:
                continue
            ours = pair[name]
            speed = ours["tok_s"] / base["tok_s"]
            prefill = base["ttft_s"] / ours["ttft_s"]
            rss = ours["rss_gb"] / base["rss_gb"]
            same = _same_prefix(ours["text"], base["text"])
            print(
                f"{name} / llama.cpp, {threads} thread(s): decode {speed:.2f}x, "
                f"prompt reading (TTFT) {prefill:.2f}x, peak RSS {rss:.2f}x; "
                f"greedy texts agree on {same} of {len(base['text'])} characters"
            )
    for engine in ENGINES:
        by_threads = {r["threads"]: r["tok_s"] for r in rows if r["engine"] == engine}
        if 1 in by_threads and len(by_threads) > 1:
            others = ", ".join(
                f"{t} threads {v / by_threads[1]:.2f}x" for t, v in by_threads.items() if t != 1
            )
            print(f"{engine}: decode vs 1 thread: {others}")


def _same_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


if __name__ == "__main__":
    sys.exit(main())
