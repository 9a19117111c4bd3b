"""What the commands print and write: every string through one filter, files private.

:func:`echo` is the one print path for text that comes from a file, a card,
the model or the user (it goes through :func:`companion.text.safe`). Files the
commands write hold the user's conversations, so :func:`write_private` creates
them readable by the user only (0600) and never replaces an existing file
unless asked to.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any, TextIO

from companion.errors import InputError
from companion.text import safe

# Inside a JSON string: C1 controls and DEL (which json.dumps leaves raw with
# ensure_ascii=False) and lone surrogates (which cannot be encoded).
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\ud800-\udfff]")


def echo(text: object, file: TextIO | None = None) -> None:
    """Print ``text`` (to stdout by default) with escapes and control characters removed."""
    print(safe(text), file=file if file is not None else sys.stdout)


def to_json(data: Any) -> str:
    """Pretty JSON whose every character is printable and encodable."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def write_private(path: Path, text: str, *, force: bool = False) -> None:
    """Write ``text`` to a new file at ``path``, readable by the user only (0600).

    An existing file is refused (:class:`InputError`) unless ``force`` is given;
    then it is replaced and made private too. Missing folders are created 0700.
    """
    from companion.paths import private_dir

    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        private_dir(path.parent)
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise InputError(f"{path} already exists (use --force to replace it)") from exc
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        if force and hasattr(os, "fchmod") and stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, 0o600)  # a file replaced keeps no wider mode
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            fd = -1
            out.write(text)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if fd != -1:
            os.close(fd)


def emit_json(data: Any, output: str | None, *, overwrite: bool = True) -> None:
    """Pretty JSON to ``output`` (a private file, saying so on stderr), or to stdout.

    ``overwrite=False`` refuses to replace an existing file (user data exports).
    """
    text = to_json(data)
    if output:
        write_private(Path(output).expanduser(), text + "\n", force=overwrite)
        echo(f"Wrote {output}", sys.stderr)
    else:
        print(text)
