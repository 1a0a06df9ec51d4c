"""Home Assistant's websocket API: commands, and a timestamped record of the events we watch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass
from datetime import datetime
import itertools
import time
from typing import Any

import aiohttp

COMMAND_TIMEOUT_S = 30.0


class WebSocketError(Exception):
    """The websocket API refused or failed."""


@dataclass(frozen=True, slots=True)
class Record:
    """One event as Home Assistant fired it (`fired`) and as we received it (`received`)."""

    fired: float
    received: float
    event_type: str
    data: dict[str, Any]

    @property
    def entity_id(self) -> str | None:
        """Entity of a state_changed event."""
        value = self.data.get("entity_id")
        return value if isinstance(value, str) else None

    @property
    def new_state(self) -> dict[str, Any] | None:
        """New state object of a state_changed event."""
        state = self.data.get("new_state")
        return state if isinstance(state, dict) else None

    @property
    def state(self) -> str | None:
        """New state string of a state_changed event."""
        state = self.new_state
        return None if state is None else str(state.get("state"))


def _timestamp(value: Any, default: float) -> float:
    """Epoch seconds of an ISO time Home Assistant sent."""
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return default


class EventWatcher:
    """An authenticated websocket connection that records subscribed events as they arrive."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, token: str
    ) -> None:
        """Connect lazily in `connect`."""
        self._session = session
        self._url = f"{base_url}/api/websocket"
        self._token = token
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self.records: list[Record] = []

    async def connect(self) -> None:
        """Open the connection and authenticate."""
        self._ws = await self._session.ws_connect(
            self._url, heartbeat=30, max_msg_size=0
        )
        hello = await self._ws.receive_json(timeout=COMMAND_TIMEOUT_S)
        if hello.get("type") != "auth_required":
            raise WebSocketError(f"unexpected greeting {hello}")
        await self._ws.send_json({"type": "auth", "access_token": self._token})
        answer = await self._ws.receive_json(timeout=COMMAND_TIMEOUT_S)
        if answer.get("type") != "auth_ok":
            raise WebSocketError(f"authentication failed: {answer}")
        self._reader = asyncio.get_running_loop().create_task(
            self._read(), name="e2e websocket reader"
        )

    async def close(self) -> None:
        """Close the connection."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._ws = self._reader = None

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            received = time.time()
            payload = message.json()
            for item in payload if isinstance(payload, list) else [payload]:
                await self._dispatch(item, received)
        error = WebSocketError("the websocket connection closed")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    async def _dispatch(self, item: dict[str, Any], received: float) -> None:
        if item.get("type") == "event":
            event = item["event"]
            record = Record(
                fired=_timestamp(event.get("time_fired"), received),
                received=received,
                event_type=str(event.get("event_type")),
                data=dict(event.get("data") or {}),
            )
            async with self._changed:
                self.records.append(record)
                self._changed.notify_all()
            return
        future = self._pending.pop(int(item.get("id", -1)), None)
        if future is None or future.done():
            return
        if item.get("type") == "result" and not item.get("success", False):
            future.set_exception(WebSocketError(f"command failed: {item.get('error')}"))
        else:
            future.set_result(item.get("result"))

    async def call(self, command: str, **fields: Any) -> Any:
        """Send a command and return its result."""
        if self._ws is None:
            raise WebSocketError("not connected")
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        await self._ws.send_json({"id": ident, "type": command, **fields})
        async with asyncio.timeout(COMMAND_TIMEOUT_S):
            return await future

    async def subscribe(self, event_type: str) -> None:
        """Record every event of this type from now on."""
        await self.call("subscribe_events", event_type=event_type)

    async def wait_for(
        self, predicate: Callable[[list[Record]], bool], timeout: float
    ) -> bool:
        """Wait until `predicate(records)` holds; False when `timeout` passes first."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: predicate(self.records))
        except TimeoutError:
            return False
        return True
