"""The ``companion`` command: argument parsing and the error boundary.

Every :class:`~companion.errors.CompanionError` that reaches here is printed as
one line (``companion: error: ...``) with exit status 2; Ctrl-C exits with 130.
No traceback is shown for anything the user can cause.

Everything a command creates is private to the user: the umask is 077 while
it runs, and the data directory is created 0700 before any command writes in
it. ``--user`` is checked here (see :func:`companion.paths.check_user_name`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from companion.cli.agenda import add_agenda_parser
from companion.cli.doctor import add_doctor_parser
from companion.cli.encrypt import add_encrypt_parser
from companion.cli.notices import show_notices
from companion.cli.output import echo
from companion.cli.remind import add_remind_parser
from companion.cli.serve import add_serve_parser
from companion.cli.voice import add_voice_parser
from companion.errors import CompanionError
from companion.paths import check_user_name, ensure_data_dir
from companion.text import safe


class _Parser(argparse.ArgumentParser):
    """argparse, with its error line (which quotes what was typed) cleaned of escapes."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {safe(message, one_line=True)}\n")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--user", help="whose conversation and memory (default: your login name); "
                                  "letters, digits and _ . @ + -")
    p.add_argument(
        "--model",
        help="model name, local path, .gguf file, hub id, 'fake', or openai:URL#MODEL (remote)",
    )
    p.add_argument("--persona", help="persona name or path to a .toml/.json/.png card")
    p.add_argument("--config", help="config file (default: <data dir>/config.toml)")


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _Parser(
        prog="companion",
        description="An offline companion that remembers you. Runs on your machine only.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = sub.add_parser("chat", help="talk in the terminal (the default)")
    _add_common(chat)
    chat.add_argument("--temperature", type=float)
    chat.add_argument("--max-tokens", type=int, dest="max_tokens")
    chat.add_argument("--seed", type=int)
    chat.add_argument("--threads", type=int)
    chat.add_argument("--no-greeting", action="store_true", help="do not open with a greeting")
    chat.add_argument("--speak", action="store_true", help="read her replies aloud")
    chat.add_argument("--save-audio", metavar="DIR", dest="save_audio",
                      help="write each reply as a WAV file (implies speaking them)")

    persona = sub.add_parser("persona", help="list, show, import or export personas")
    psub = persona.add_subparsers(dest="persona_command", metavar="ACTION", required=True)
    psub.add_parser("list", help="bundled and imported personas")
    show = psub.add_parser("show", help="print a persona")
    show.add_argument("name", nargs="?")
    imp = psub.add_parser("import", help="import a Character Card (V1/V2 JSON or PNG)")
    imp.add_argument("path")
    imp.add_argument("--name", help="save under this name (default: the card's name)")
    exp = psub.add_parser("export", help="export a persona as a Character Card V2 "
                          "(JSON, or a PNG card when -o ends in .png)")
    exp.add_argument("name")
    exp.add_argument("-o", "--output", help="file to write (default: standard output)")
    exp.add_argument("--force", action="store_true", help="replace an existing file")

    models = sub.add_parser("models", help="list or fetch the offline models")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    msub.add_parser("list", help="the registry, and what is downloaded")
    fetch = msub.add_parser("fetch", help="download and verify a model now")
    fetch.add_argument("name")
    prune_cmd = msub.add_parser("prune", help="delete the copies older versions converted "
                                              "(float32, int8/int4), keeping the GGUF files")
    prune_cmd.add_argument("--yes", action="store_true", help="do not ask first")

    memory = sub.add_parser("memory", help="see, search, correct, pin, forget, export or import "
                                           "what she remembers")
    msub2 = memory.add_subparsers(dest="memory_command", metavar="ACTION", required=True)
    ml = msub2.add_parser("list", help="facts and session summaries remembered about the user")
    ms = msub2.add_parser("search", help="memories relevant to some words (hybrid recall)")
    ms.add_argument("query")
    ms.add_argument("--limit", type=int, default=20)
    msh = msub2.add_parser("show", help="one memory with the messages it came from")
    msh.add_argument("id", help="a fact id (12), a summary (s3) or a message (t40)")
    med = msub2.add_parser("edit", help="correct a fact")
    med.add_argument("id")
    med.add_argument("text")
    mp = msub2.add_parser("pin", help="pin a fact or summary so it is recalled first")
    mp.add_argument("id")
    mp.add_argument("--off", action="store_true", help="unpin")
    mf = msub2.add_parser("forget", help="forget by id or by words (with what came from it)")
    mf.add_argument("target")
    me = msub2.add_parser("export", help="everything stored about the user, as JSON")
    me.add_argument("-o", "--output", help="file to write (default: standard output)")
    me.add_argument("--force", action="store_true", help="replace the output file if it exists")
    mi = msub2.add_parser("import", help="restore an export file (all of it or nothing)")
    mi.add_argument("file")
    for p in (ml, ms, msh, med, mp, mf, me, mi):
        p.add_argument("--user")

    add_serve_parser(sub, _add_common)
    add_voice_parser(sub, _add_common)
    add_doctor_parser(sub)
    add_encrypt_parser(sub)
    add_remind_parser(sub)
    add_agenda_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0].startswith("-") and args_list[0] not in ("-h", "--help"):
        args_list.insert(0, "chat")
    args = build_parser().parse_args(args_list)
    show_notices()  # the library's warnings, one line each on stderr
    umask = os.umask(0o077)
    try:
        return _dispatch(args)
    except CompanionError as exc:
        echo(f"companion: error: {exc}", sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    finally:
        os.umask(umask)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command is not None:
        if getattr(args, "user", None) is not None:
            check_user_name(args.user)
        if args.command not in ("models", "doctor"):  # those two write nothing there
            ensure_data_dir()
    if args.command == "chat":
        from companion.cli.chat import run_chat

        return run_chat(args)
    if args.command == "persona":
        from companion.cli.personas import run_persona

        return run_persona(args)
    if args.command == "models":
        from companion.cli.models import run_models

        return run_models(args)
    if args.command == "memory":
        from companion.cli.memory import run_memory

        return run_memory(args)
    if args.command == "serve":
        from companion.cli.serve import run_serve

        return run_serve(args)
    if args.command == "voice":
        from companion.cli.voice import run_voice

        return run_voice(args)
    if args.command == "doctor":
        from companion.cli.doctor import run_doctor

        return run_doctor(args)
    if args.command in ("encrypt", "decrypt"):
        from companion.cli.encrypt import run_encrypt

        return run_encrypt(args)
    if args.command == "agenda":
        from companion.cli.agenda import run_agenda

        return run_agenda(args)
    if args.command == "remind":
        from companion.cli.remind import run_remind

        return run_remind(args)
    build_parser().print_help()
    return 2
