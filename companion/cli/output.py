"""Writing a command's JSON result to a file or to standard output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def emit_json(data: Any, output: str | None) -> None:
    """Pretty JSON to ``output`` (saying so on stderr), or to stdout when none is given."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if output:
        Path(output).write_text(text + "\n", encoding="utf-8")
        print(f"Wrote {output}", file=sys.stderr)
    else:
        print(text)
