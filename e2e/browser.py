"""Headless Chromium driven over the Chrome DevTools Protocol: log in and screenshot a page.

No browser is downloaded at run time: the Debian `chromium` package is used, and the protocol is
spoken over a websocket with aiohttp (already in the venv). The frontend is logged in by giving it
the tokens it keeps in ``localStorage["hassTokens"]`` before its scripts run, the same way it stores
them itself after a login.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
from pathlib import Path
import shutil
import signal
import tempfile
import time
from typing import Any

import aiohttp

START_TIMEOUT_S = 60.0
PAGE_TIMEOUT_S = 120.0
SETTLE_QUIET_S = 1.5
"""The page counts as settled once no resource has loaded for this long ..."""
SETTLE_MAX_S = 20.0
"""... or after this long at most."""
VIEWPORT = (1280, 1080)

# Collects the text of the page, piercing shadow roots (the frontend is made of web components).
_PAGE_TEXT_JS = """
(() => {
  const parts = [];
  const walk = (node) => {
    if (node.nodeType === Node.TEXT_NODE) { parts.push(node.textContent); return; }
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) walk(child);
  };
  walk(document);
  return parts.join(" ").replace(/\\s+/g, " ");
})()
"""


class BrowserError(Exception):
    """Chromium could not be started or the page did not show what was expected."""


def find_chromium() -> str | None:
    """Path of a Chromium or Chrome binary, if one is installed."""
    for name in (
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ):
        if path := shutil.which(name):
            return path
    return None


class Chromium:
    """One headless Chromium process with a throw-away profile."""

    def __init__(self, log: Path) -> None:
        """Nothing runs until `start`."""
        self.log = log
        self._profile = Path(tempfile.mkdtemp(prefix="bm-e2e-chromium-"))
        self._proc: asyncio.subprocess.Process | None = None
        self._log_handle: int | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)

    async def start(self) -> None:
        """Launch Chromium and attach to its first page."""
        binary = find_chromium()
        if binary is None:
            raise BrowserError("Chromium is not installed (apt-get install chromium)")
        self._log_handle = os.open(
            self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644
        )
        self._proc = await asyncio.create_subprocess_exec(
            binary,
            "--headless=new",
            "--no-sandbox",  # CI may run as root, where the sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            "--remote-debugging-port=0",
            f"--user-data-dir={self._profile}",
            f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=self._log_handle,
            start_new_session=True,  # its helper processes form a group we can stop together
        )
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not port_file.exists() or not port_file.read_text().strip():
            if self._proc.returncode is not None:
                raise BrowserError(
                    f"chromium exited with status {self._proc.returncode}"
                )
            if time.monotonic() > deadline:
                raise BrowserError(
                    f"chromium did not open DevTools in {START_TIMEOUT_S:g} s"
                )
            await asyncio.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        async with self._session.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json(content_type=None)
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            raise BrowserError("chromium has no page to drive")
        self._ws = await self._session.ws_connect(
            pages[0]["webSocketDebuggerUrl"], max_msg_size=0
        )

    async def stop(self) -> None:
        """Close the connection and the browser; remove the profile."""
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if (proc := self._proc) is not None:
            # Chromium's helpers (zygote, utility processes) share its process group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        self._proc = None
        if self._log_handle is not None:
            os.close(self._log_handle)
            self._log_handle = None
        for _attempt in range(20):  # a helper may still write a file while it exits
            shutil.rmtree(self._profile, ignore_errors=True)
            if not self._profile.exists():
                break
            await asyncio.sleep(0.1)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result (events in between are skipped)."""
        if self._ws is None:
            raise BrowserError("not started")
        ident = next(self._ids)
        await self._ws.send_json({"id": ident, "method": method, "params": params})
        async with asyncio.timeout(PAGE_TIMEOUT_S):
            while True:
                message = await self._ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise BrowserError(f"DevTools connection closed ({message.type})")
                data = json.loads(message.data)
                if data.get("id") != ident:
                    continue
                if "error" in data:
                    raise BrowserError(f"{method}: {data['error']}")
                result: dict[str, Any] = data.get("result", {})
                return result

    async def _open(self, url: str) -> None:
        """Navigate and wait until the document has loaded."""
        before = await self.evaluate("location.href")
        await self.send("Page.navigate", url=url)
        deadline = time.monotonic() + PAGE_TIMEOUT_S
        while (
            await self.evaluate("location.href") == before
            or await self.evaluate("document.readyState") != "complete"
        ):
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not load in {PAGE_TIMEOUT_S:g} s")
            await asyncio.sleep(0.1)

    async def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (awaiting promises) and return its value."""
        result = await self.send(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"page script failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def screenshot_logged_in(
        self,
        base_url: str,
        path: str,
        tokens: dict[str, Any],
        expect: tuple[str, ...],
        out: Path,
    ) -> str:
        """Open `path` logged in, wait until every text in `expect` shows, save a PNG; page text."""
        width, height = VIEWPORT
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        # Store the tokens on the origin first (a small JSON page, no frontend), then open the page.
        await self._open(f"{base_url}/auth/providers")
        store = json.dumps(json.dumps(tokens))
        await self.evaluate(f"localStorage.setItem('hassTokens', {store}); true")
        await self._open(f"{base_url}{path}")
        deadline = time.monotonic() + PAGE_TIMEOUT_S
        text = ""
        while True:  # the frontend renders asynchronously; poll what it shows
            if "/auth/authorize" in str(await self.evaluate("location.href")):
                raise BrowserError(
                    "the frontend did not take the tokens: it asks to log in"
                )
            text = str(await self.evaluate(_PAGE_TEXT_JS) or "")
            if all(item in text for item in expect):
                break
            if time.monotonic() > deadline:
                missing = [item for item in expect if item not in text]
                raise BrowserError(
                    f"{path} did not show {missing} in {PAGE_TIMEOUT_S:g} s; "
                    f"page text: {text[:500]!r}"
                )
            await asyncio.sleep(0.5)
        # Icons and fonts arrive after the text: wait until no resource has loaded for a while.
        settled = time.monotonic() + SETTLE_MAX_S
        count, quiet_since = -1, time.monotonic()
        while time.monotonic() < settled:
            now = int(
                await self.evaluate("performance.getEntriesByType('resource').length")
            )
            if now != count:
                count, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= SETTLE_QUIET_S:
                break
            await asyncio.sleep(0.1)
        await self.evaluate(
            "document.fonts.ready.then(() => new Promise("
            "r => requestAnimationFrame(() => requestAnimationFrame(() => r(true)))))"
        )
        shot = await self.send("Page.captureScreenshot", format="png")
        out.write_bytes(base64.b64decode(shot["data"]))
        return text
