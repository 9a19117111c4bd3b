"""The agenda through ``companion serve``: due reminders with the next reply
(``companion_notices``, streamed or not, the OpenAI schema intact) and
``GET /v1/companion/agenda`` (``due=1`` claims them), each reminder given once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import openai
import pytest

from companion.agenda import store as agenda
from companion.agenda.model import Draft
from companion.llm.fake import FakeLLM
from companion.memory import Store
from companion.server.app import CompanionServer
from companion.server.testing import open_test_server, serving
from companion.testing import FakeClock

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 12, 7, 14, 0, tzinfo=PARIS)


def _add(home: Path, user: str, what: str, when: datetime) -> int:
    with Store.open(home / "companion.db") as store:
        draft = Draft(what=what, when=when, kind="reminder")
        return agenda.add_item(store, user, draft, tz="Europe/Paris", now=NOW).id


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def server(companion_home: Path, clock: FakeClock) -> CompanionServer:
    return open_test_server(companion_home, llm=FakeLLM(["Hello!", "Fine.", "Sure."]),
                            user="theo", clock=clock, timezone="Europe/Paris", proactive=False)


@pytest.fixture
def url(server: CompanionServer) -> Iterator[str]:
    with serving(server) as base:
        yield base


def _said(home: Path, user: str) -> list[str]:
    with Store.open(home / "companion.db") as store:
        return [t.content for t in store.recent_turns(user, 50) if t.role == "assistant"]


def _wait_for(home: Path, user: str, text: str) -> list[str]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        said = _said(home, user)
        if text in said:
            return said
        time.sleep(0.02)
    return _said(home, user)


def _chat(url: str, text: str, **extra: object) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": text}], **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10,
                      headers={"X-Companion-User": "theo"})


def test_a_due_reminder_comes_with_the_next_reply_once(
    url: str, companion_home: Path, clock: FakeClock
) -> None:
    item = _add(companion_home, "theo", "call Maya", NOW.replace(minute=30))
    first = _chat(url, "hi").json()
    assert "companion_notices" not in first  # not due yet
    clock.now = NOW.replace(minute=30)
    second = _chat(url, "how are you?").json()
    assert second["choices"][0]["message"]["content"] == "Fine."
    assert second["companion_notices"] == [
        {"kind": "reminder", "text": "Hey, it's time: call Maya.", "item_ids": [item]}]
    assert _wait_for(companion_home, "theo", "Hey, it's time: call Maya.") == [
        "Hello!", "Fine.", "Hey, it's time: call Maya."]
    clock.now = NOW.replace(minute=40)
    third = _chat(url, "ok").json()
    assert "companion_notices" not in third  # given once


def test_the_openai_client_still_reads_a_reply_with_notices(
    url: str, companion_home: Path, clock: FakeClock
) -> None:
    _add(companion_home, "theo", "call Maya", NOW)
    with openai.OpenAI(base_url=f"{url}/v1", api_key="-", max_retries=0) as client:
        reply = client.chat.completions.create(
            model="Samantha", messages=[{"role": "user", "content": "hi"}], user="theo")
    assert reply.choices[0].message.content == "Hello!"
    assert (reply.model_extra or {})["companion_notices"][0]["text"] == "Hey, it's time: call Maya."


def test_a_streamed_reply_carries_the_notices_in_its_last_chunk(
    url: str, companion_home: Path
) -> None:
    _add(companion_home, "theo", "call Maya", NOW)
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=10,
                      headers={"X-Companion-User": "theo"}) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hello!"
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["companion_notices"][0]["text"] == "Hey, it's time: call Maya."
    assert all("companion_notices" not in c for c in chunks[:-1])
    assert _wait_for(companion_home, "theo", "Hey, it's time: call Maya.") == [
        "Hello!", "Hey, it's time: call Maya."]


def test_the_agenda_endpoint_lists_and_claims_due_reminders(
    url: str, companion_home: Path, clock: FakeClock
) -> None:
    call = _add(companion_home, "theo", "call Maya", NOW)
    later = _add(companion_home, "theo", "pay the rent", NOW.replace(hour=18))
    _add(companion_home, "ana", "ana's own thing", NOW)
    listed = httpx.get(f"{url}/v1/companion/agenda", params={"user": "theo"}).json()
    assert listed["object"] == "companion.agenda" and listed["user"] == "theo"
    assert [(i["id"], i["what"], i["when"]) for i in listed["items"]] == [
        (call, "call Maya", "2026-12-07T14:00:00+01:00"),
        (later, "pay the rent", "2026-12-07T18:00:00+01:00")]
    assert "notices" not in listed
    due = httpx.get(f"{url}/v1/companion/agenda", params={"user": "theo", "due": "1"}).json()
    assert due["notices"] == [
        {"kind": "reminder", "text": "Hey, it's time: call Maya.", "item_ids": [call]}]
    said = _wait_for(companion_home, "theo", "Hey, it's time: call Maya.")
    assert said == ["Hey, it's time: call Maya."]
    clock.now = NOW.replace(minute=5)
    again = httpx.get(f"{url}/v1/companion/agenda", params={"user": "theo", "due": "1"}).json()
    assert again["notices"] == []
    ana = httpx.get(f"{url}/v1/companion/agenda",
                    params={"due": "1"}, headers={"X-Companion-User": "ana"}).json()
    assert [n["text"] for n in ana["notices"]] == [
        "I was meant to remind you at 2 pm: ana's own thing."]


@pytest.mark.parametrize(("params", "param"), [
    ({"user": "", "due": "1"}, "user"),
    ({"user": "x" * 100}, "user"),
    ({"user": "theo", "due": "soon"}, "due"),
])
def test_bad_queries_are_one_line_errors(url: str, params: dict[str, str], param: str) -> None:
    response = httpx.get(f"{url}/v1/companion/agenda", params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and "\n" not in error["message"]
