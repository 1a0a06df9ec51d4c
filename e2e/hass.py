"""A real Home Assistant process: fresh config, start, onboarding and config flows over its API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import os
from pathlib import Path
import shutil
import signal
import socket
import time
from typing import Any

import aiohttp

START_TIMEOUT_S = 240.0
"""First start on a busy 2-core machine: the frontend and every default integration load."""
STOP_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 60.0
USERNAME = "e2e"
PASSWORD = "e2e-baby-monitor"  # a throw-away local instance

CONFIGURATION_YAML = """\
# Written by scripts/e2e for one run. No default_config: it loads go2rtc, whose binary is missing.
homeassistant:
  name: Baby Monitor E2E
  time_zone: UTC
  country: DE
  unit_system: metric
http:
  server_host: 127.0.0.1
  server_port: {port}
frontend:
e2e_fault:
logger:
  default: warning
  logs:
    custom_components.baby_monitor: debug
"""


class HassError(Exception):
    """Home Assistant did not do what the run needs."""


def free_port() -> int:
    """Find a TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class Tokens:
    """What /auth/token returned."""

    access_token: str
    refresh_token: str
    expires_in: int


class HomeAssistant:
    """One `hass` process on a fresh config directory."""

    def __init__(
        self, config_dir: Path, integration: Path, env: dict[str, str]
    ) -> None:
        """Write the config directory (emptied first) with the integration installed into it."""
        self.config_dir = config_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.client_id = f"{self.base_url}/"
        self.env = env
        self.tokens: Tokens | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._out: int | None = None
        self._session: aiohttp.ClientSession | None = None
        self.repo = integration.parents[1]
        if config_dir.exists():
            shutil.rmtree(config_dir)
        # hass starts through scripts/develop (the README's "run it" command, checked here)
        config_dir.mkdir(parents=True)
        (config_dir / "configuration.yaml").write_text(
            CONFIGURATION_YAML.format(port=self.port), encoding="utf-8"
        )
        # the test-only fault injector (e2e/fault_component) beside the integration
        (config_dir / "custom_components").mkdir()
        (config_dir / "custom_components" / "e2e_fault").symlink_to(
            Path(__file__).resolve().parent / "fault_component"
        )
        # the integration's folder alone, copied as HACS installs it (scripts/develop keeps it)
        shutil.copytree(
            integration,
            config_dir / "custom_components" / integration.name,
            ignore=shutil.ignore_patterns("__pycache__"),
        )

    @property
    def log(self) -> Path:
        """Home Assistant's own log file."""
        return self.config_dir / "home-assistant.log"

    @property
    def output(self) -> Path:
        """Where the process's stdout and stderr go."""
        return self.config_dir.parent / "hass.out"

    @property
    def pid(self) -> int:
        """Process id of hass (`scripts/develop` execs it)."""
        if self._proc is None:
            raise HassError("hass is not running")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """Exit status once the process has ended."""
        return None if self._proc is None else self._proc.returncode

    @property
    def session(self) -> aiohttp.ClientSession:
        """HTTP session for the API."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
            )
        return self._session

    def _headers(self) -> dict[str, str]:
        if self.tokens is None:
            return {}
        return {"Authorization": f"Bearer {self.tokens.access_token}"}

    async def start(self) -> None:
        """Launch Home Assistant through `scripts/develop` (no pip: all from the lock) and wait for its API."""
        self._out = os.open(self.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._proc = await asyncio.create_subprocess_exec(
            str(self.repo / "scripts" / "develop"),
            "--skip-pip",
            "--log-no-color",
            cwd=self.repo,
            env=os.environ | self.env | {"BABY_MONITOR_CONFIG": str(self.config_dir)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._out,
            start_new_session=True,  # a Ctrl-C of the driver is ours to pass on, in order
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # nothing to await before the HTTP server exists: poll it
            if self._proc.returncode is not None:
                raise HassError(f"hass exited with status {self._proc.returncode}")
            try:
                async with self.session.get(
                    f"{self.base_url}/api/onboarding",
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise HassError(f"no API after {START_TIMEOUT_S:g} s")
            await asyncio.sleep(0.5)

    async def stop(self) -> int | None:
        """SIGTERM, wait (then SIGKILL); returns the exit status (None if it never ran)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._out is not None:
            os.close(self._out)
            self._out = None
        return None if proc is None else proc.returncode

    async def request(
        self, method: str, path: str, payload: dict[str, Any] | None = None
    ) -> Any:
        """Call the REST API (authenticated once onboarded); HassError unless it answers 2xx."""
        async with self.session.request(
            method, f"{self.base_url}{path}", json=payload, headers=self._headers()
        ) as resp:
            text = await resp.text()
            if resp.status >= 300:
                raise HassError(f"{method} {path}: HTTP {resp.status} {text[:300]}")
            return await resp.json() if text else None

    async def onboard(self) -> list[str]:
        """Create the owner, get tokens and finish every onboarding step; returns the steps done."""
        done: list[str] = []
        user = await self.request(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": self.client_id,
                "name": "E2E",
                "username": USERNAME,
                "password": PASSWORD,
                "language": "en",
            },
        )
        done.append("user")
        await self._token(
            {"grant_type": "authorization_code", "code": user["auth_code"]}
        )
        steps = await self.request("GET", "/api/onboarding")
        pending = {step["step"] for step in steps if not step["done"]}
        for step, payload in (
            ("core_config", {}),
            ("analytics", {}),
            (
                "integration",
                {
                    "client_id": self.client_id,
                    "redirect_uri": f"{self.base_url}/?auth_callback=1",
                },
            ),
        ):
            if step in pending:
                await self.request("POST", f"/api/onboarding/{step}", payload)
                done.append(step)
        left = [
            step["step"]
            for step in await self.request("GET", "/api/onboarding")
            if not step["done"]
        ]
        if left:
            raise HassError(f"onboarding steps left: {left}")
        return done

    async def _token(self, form: dict[str, str]) -> None:
        async with self.session.post(
            f"{self.base_url}/auth/token", data=form | {"client_id": self.client_id}
        ) as resp:
            if resp.status != 200:
                raise HassError(f"/auth/token: HTTP {resp.status} {await resp.text()}")
            body = await resp.json()
        self.tokens = Tokens(
            body["access_token"],
            body.get("refresh_token", self.tokens.refresh_token if self.tokens else ""),
            int(body["expires_in"]),
        )

    async def wait_running(self, timeout: float = START_TIMEOUT_S) -> None:
        """Wait until Home Assistant reports it has finished starting."""
        deadline = time.monotonic() + timeout
        while (await self.request("GET", "/api/config"))["state"] != "RUNNING":
            if time.monotonic() > deadline:
                raise HassError(f"not RUNNING after {timeout:g} s")
            await asyncio.sleep(0.5)

    async def add_entry(self, menu_option: str, form: dict[str, Any]) -> dict[str, Any]:
        """Run Baby Monitor's config flow: the source menu, then the form; returns the entry."""
        flow = await self.request(
            "POST",
            "/api/config/config_entries/flow",
            {"handler": "baby_monitor", "show_advanced_options": False},
        )
        if flow.get("type") != "menu" or menu_option not in flow.get(
            "menu_options", []
        ):
            raise HassError(f"expected the source menu, got {flow}")
        url = f"/api/config/config_entries/flow/{flow['flow_id']}"
        step = await self.request("POST", url, {"next_step_id": menu_option})
        if step.get("type") != "form" or step.get("step_id") != menu_option:
            raise HassError(f"expected the {menu_option} form, got {step}")
        result = await self.request("POST", url, form)
        if result.get("type") != "create_entry":
            raise HassError(f"the {menu_option} flow did not create an entry: {result}")
        entry: dict[str, Any] = result["result"]
        return entry

    async def set_options(self, entry_id: str, options: dict[str, Any]) -> None:
        """Save an entry's options through its options flow (the entry reloads)."""
        flow = await self.request(
            "POST", "/api/config/config_entries/options/flow", {"handler": entry_id}
        )
        if flow.get("type") != "form":
            raise HassError(f"expected the options form, got {flow}")
        result = await self.request(
            "POST",
            f"/api/config/config_entries/options/flow/{flow['flow_id']}",
            options,
        )
        if result.get("type") != "create_entry":
            raise HassError(f"the options flow did not save: {result}")
