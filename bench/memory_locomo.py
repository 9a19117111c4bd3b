"""LoCoMo retrieval benchmark (placeholder; being written)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

_SESSION = re.compile(r"^session_(\d+)$")


def parse_when(text: str) -> datetime:
    """LoCoMo's "1:56 pm on 8 May, 2023" as an aware datetime (UTC)."""
    return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def conversation_turns(
    conv: dict[str, Any],
) -> list[tuple[int, datetime, list[tuple[str, str, str]]]]:
    """Sessions in order: (number, start time, [(speaker, dia_id, content)])."""
    out = []
    for key, value in conv.items():
        m = _SESSION.match(key)
        if m and isinstance(value, list):
            n = int(m.group(1))
            turns = []
            for t in value:
                content = f"{t['speaker']}: {t['text']}"
                if t.get("blip_caption"):
                    content += f" [shares a photo: {t['blip_caption']}]"
                turns.append((t["speaker"], t["dia_id"], content))
            out.append((n, parse_when(conv[f"session_{n}_date_time"]), turns))
    return sorted(out, key=lambda s: s[0])
