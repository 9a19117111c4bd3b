"""Hypothesis strategies for hostile input, shared by tests/test_hostile_*.py and
bench/hostile.py: what a user can type, paste, name, import or send.

Each strategy mixes ordinary text with what has broken programs like this one:
terminal escapes (CSI, OSC, DCS, 8-bit CSI), control characters, bidirectional
overrides, lone surrogates, numbers too large for SQLite, digits that are not
ASCII, huge and empty strings, deep nesting, wrong JSON types.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

from hypothesis import strategies as st

#: Sequences a terminal would act on if they were printed raw.
ESCAPES = (
    "\x1b[31m",
    "\x1b[2J\x1b[H",
    "\x1b]0;pwned\x07",
    "\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\",
    "\x1bP+q544e\x1b\\",
    "\x9b31m",
    "\x9d0;title\x9c",
    "\x1bc",
    "\x1b",
    "\x07",
)
#: Characters that are not text, or not text a terminal shows as it is.
ODD = (
    "\x00", "\r", "\b", "\x7f", "\x85", "\t", "\n", "\u202e", "\u2066", "\ufeff",
    "\ud800", "\udfff", "\udcff", "\U0001f600", "\u0301", "²", "٣", "Ⅻ",
)
#: Numbers a user may type where an id is wanted.
NUMBERS = (
    "0", "-1", "1", "007", "99999999999999999999999", str(2**63), str(2**63 - 1), str(2**64),
    "1e9", "0x10", "²", "٣", "１２", "Ⅻ", "1_000", " 1 ", "+1", "9" * 400,
)

#: Bytes in the output that mean something was printed raw.
RAW_MARKERS = ("\x1b", "\x9b", "\x9d", "\x07", "\x00")

pieces = st.one_of(
    st.text(max_size=30),
    st.sampled_from(ESCAPES),
    st.sampled_from(ODD),
    st.sampled_from(NUMBERS),
    st.sampled_from(("forget", "Paris", "remember", "//", "/", "{{char}}", "{{user}}", "%s")),
)


def hostile_text(max_pieces: int = 8) -> st.SearchStrategy[str]:
    """Short text with escapes, controls, surrogates and odd digits mixed in."""
    return st.lists(pieces, max_size=max_pieces).map("".join)


def messages() -> st.SearchStrategy[str]:
    """What a user may send as a chat message (one line as the chat reads it)."""
    return st.one_of(
        hostile_text(),
        st.sampled_from(("", " ", "\t", "\u3000", "\x1b", "\ud800", "\x00")),
        # huge: just under and just over the limit a message may have (1,000,000)
        st.sampled_from((5_000, 200_000, 1_000_001)).map(lambda n: "word " * (n // 5 + 1)),
    )


def user_ids() -> st.SearchStrategy[str]:
    """Who the user says they are (``--user``, a header, a body field)."""
    return st.one_of(
        hostile_text(4),
        st.sampled_from(("", " ", ".", "..", "../../x", "a/b", "a\\b", "~", "-rf",
                         "\x00", "x" * 300, "CON", "théo", "\ud800")),
    )


COMMAND_NAMES = ("help", "memories", "forget", "persona", "mood", "new", "export", "quit",
                 "exit", "nope", "FORGET", "")


@st.composite
def slash_commands(draw: st.DrawFn) -> str:
    """A slash command line: a known or unknown command with hostile arguments.

    ``/export`` is only drawn with no path (it writes into the data directory):
    a hostile path would write wherever it names.
    """
    name = draw(st.sampled_from(COMMAND_NAMES) | hostile_text(2))
    if name == "export":
        return "/export" + draw(st.sampled_from(("", " --force")))
    arg = draw(st.one_of(
        st.just(""),
        st.sampled_from(NUMBERS),
        st.sampled_from(NUMBERS).map(lambda n: f"s{n}"),
        st.sampled_from(NUMBERS).map(lambda n: f"t{n}"),
        hostile_text(4),
    ))
    return f"/{name} {arg}".rstrip(" ") if arg else f"/{name}"


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value, with hostile strings and numbers at the leaves."""
    leaves = st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        hostile_text(3),
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text(2), inner,
                                                                     max_size=4),
        max_leaves=max_leaves,
    )


def deep_json(depth: int) -> str:
    """``[[[...]]]`` nested ``depth`` levels: enough to overflow a recursive parser."""
    return "[" * depth + "]" * depth


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """``document`` (plain JSON data) with one value somewhere replaced by a hostile one,
    a key removed, or an item added: the shapes of a broken import file."""
    doc = json.loads(json.dumps(document))
    node: Any = doc
    path: list[Any] = []
    while True:  # walk down a random path, stopping at some depth
        children = list(node) if isinstance(node, dict) else list(range(len(node))) \
            if isinstance(node, list) else []
        if not children or (bool(path) and draw(st.booleans())):
            break
        key = draw(st.sampled_from(children))
        path.append(key)
        if not isinstance(node[key], dict | list):
            break
        node = node[key]
    if not path:
        return draw(json_values())
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    action = draw(st.sampled_from(("replace", "replace", "delete", "add")))
    if action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif action == "delete":
        parent.pop(last)
    elif action == "add" and isinstance(parent, list):
        parent.append(draw(json_values(4)))
    elif action == "add":
        parent[draw(hostile_text(2))] = draw(json_values(4))
    else:
        parent[last] = draw(st.one_of(
            json_values(4),
            st.sampled_from((2**63, -(2**63) - 1, 2**64, 10**30, "1", "text", 1.5, [1], {"a": 1},
                             [[1, 2]], True, None, "\ud800", "9999-99-99T99:99:99")),
        ))
    return doc


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@st.composite
def png_cards(draw: st.DrawFn) -> bytes:
    """PNG files with text chunks holding (broken) cards, and broken PNG structure."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(b"\x00\x80"))
    card = draw(st.one_of(json_values(8), st.fixed_dictionaries(
        {"spec": st.sampled_from(("chara_card_v2", "chara_card_v3", "x")),
         "data": st.one_of(json_values(6), st.fixed_dictionaries({"name": hostile_text(4)}))},
    )))
    payload = draw(st.one_of(
        st.just(base64.b64encode(json.dumps(card).encode())),
        st.binary(max_size=64),
        st.just(base64.b64encode(b"\xff\xfe{")),
    ))
    keyword = draw(st.sampled_from((b"chara", b"ccv3", b"Comment", b"chara\xff", b"")))
    kind = draw(st.sampled_from((b"tEXt", b"zTXt", b"iTXt")))
    if kind == b"zTXt":
        body = keyword + b"\0\0" + draw(st.sampled_from((zlib.compress(payload), payload[:9])))
    elif kind == b"iTXt":
        flag = draw(st.sampled_from((b"\0", b"\1")))
        text = zlib.compress(payload) if flag == b"\1" else payload
        body = keyword + b"\0" + flag + b"\0en\0\0" + text
    else:
        body = keyword + b"\0" + payload
    chunks = [ihdr, idat, png_chunk(kind, body), png_chunk(b"IEND", b"")]
    data = PNG_SIGNATURE + b"".join(chunks)
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    if cut is not None:  # truncated, or a bad CRC / length somewhere
        data = draw(st.sampled_from((
            data[:cut],
            data[:cut] + b"\xff" + data[cut + 1:],
        )))
    return data


def card_files() -> st.SearchStrategy[bytes]:
    """The bytes of a file given to ``persona import``: JSON shapes, PNGs, garbage."""
    return st.one_of(
        json_values().map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries({"spec": st.just("chara_card_v2"), "data": json_values(8)})
        .map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries({"name": hostile_text(4), "description": json_values(3)})
        .map(lambda v: json.dumps(v).encode()),
        png_cards(),
        st.binary(max_size=200),
        st.just(deep_json(100_000).encode()),
        st.just(b'{"name": "\\ud800"}'),
    )


#: Content-Type values a client (or a web page's form) may send.
CONTENT_TYPES = (
    "application/json", "application/json; charset=utf-8", "text/plain",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/jsonx",
    "APPLICATION/JSON", "application/json; charset=latin-1",
)


def header_text() -> st.SearchStrategy[str]:
    """A header value httpx will send: latin-1, no line breaks."""
    return st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                   max_size=40)


@st.composite
def http_requests(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    """Headers and a body for ``POST /v1/chat/completions``."""
    headers: dict[str, str] = {}
    content_type = draw(st.sampled_from(CONTENT_TYPES) | header_text())
    if content_type:
        headers["content-type"] = content_type
    for name, values in (
        ("x-companion-user", user_ids().filter(lambda s: s.isprintable() and s.isascii())),
        ("origin", st.sampled_from(("http://evil.example", "null", "http://127.0.0.1:8000"))),
        ("host", st.sampled_from(("evil.example:8000", "localhost", "127.0.0.1:1", "[::1]"))),
        ("authorization", header_text()),
    ):
        if draw(st.booleans()):
            headers[name] = draw(values | header_text())
    message = {"role": draw(st.sampled_from(("user", "system", "assistant", "tool", "x"))),
               "content": draw(st.one_of(messages(), json_values(4)))}
    body = draw(st.one_of(
        st.just({"messages": [message]}),
        st.fixed_dictionaries({"messages": st.just([message])},
                              optional={"stream": json_values(2), "max_tokens": json_values(2),
                                        "temperature": json_values(2), "user": user_ids(),
                                        "model": hostile_text(2), "stop": json_values(3)}),
        json_values(),
    ))
    raw = draw(st.one_of(
        st.just(json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")),
        st.just(json.dumps(body, ensure_ascii=True).encode()),
        st.binary(max_size=100),
        st.just(deep_json(100_000).encode()),
        st.just(b'{"messages": [{"role": "user", "content": "\\ud800 lone"}]}'),
    ))
    return headers, raw


# -- running the CLI in-process, and what to check afterwards ---------------------------


def run_cli(argv: list[str], stdin: bytes = b"") -> tuple[int, str, str]:
    """``companion ARGV`` in this process, ``stdin`` read as the real one is (UTF-8,
    strict); returns the exit status, stdout and stderr. An exception that escapes
    ``main`` is what the user would see as a traceback: it propagates."""
    import contextlib
    import io
    import sys

    from companion.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(argv)
            except SystemExit as exc:  # argparse: usage errors are status 2, one message
                status = exc.code if isinstance(exc.code, int) else 2
    finally:
        sys.stdin = saved
    return status, out.getvalue(), err.getvalue()


def raw_markers(text: str) -> list[str]:
    """Escape introducers and control characters that reached the output raw."""
    return sorted({repr(ch) for ch in text if ch in RAW_MARKERS})


def one_line_error(status: int, err: str) -> bool:
    """A refused command says why in one line (``companion: error: ...`` or usage)."""
    lines = err.strip().splitlines()
    if status == 2 and lines and lines[0].startswith("usage:"):
        return "error:" in lines[-1] and "Traceback" not in err  # argparse's own format
    return status != 2 or len(lines) == 1


#: The tables that hold what the companion knows (FTS and vector indexes follow them).
TABLES = ("users", "sessions", "turns", "facts", "fact_turns", "summaries", "persona_states")


def snapshot(home: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the store's tables that hold any (``{}``: empty, or no store yet)."""
    import sqlite3
    from pathlib import Path

    path = Path(home) / "companion.db"
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        tables = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                  for t in TABLES if t in names}
        return {t: rows for t, rows in tables.items() if rows}  # no store == an empty one
    finally:
        conn.close()
