"""A virtual microphone: a user-mode PulseAudio with a null sink whose monitor is the default source.

Whatever `play` plays into the sink is what a client recording from ``default`` hears — here,
Home Assistant's ffmpeg reading ``-f pulse -i default`` for a ``pulse:default`` microphone entry.
The daemon runs in the foreground as our child, with its own runtime directory (socket) and home,
so it touches nothing of the machine's own audio setup and is stopped by its process id.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
import shutil
import tempfile
import time

from baby_monitor_engine.pcm import SAMPLE_RATE

SINK = "vmic"

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


class PulseError(Exception):
    """The virtual microphone could not be set up."""


class VirtualMicrophone:
    """PulseAudio daemon + null sink `vmic`; its monitor is the default source."""

    def __init__(self, log: Path) -> None:
        """Prepare a private runtime directory; nothing runs until `start`."""
        self.log = log
        # Unix socket paths are limited to 108 bytes: keep the runtime dir short, in /tmp.
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="bm-e2e-pulse-"))
        self.runtime_dir.chmod(0o700)
        self._daemon: asyncio.subprocess.Process | None = None
        self._player: asyncio.subprocess.Process | None = None
        self._log_handle: int | None = None

    @property
    def client_env(self) -> dict[str, str]:
        """Environment variables that point PulseAudio clients (ffmpeg, paplay) at this daemon."""
        return {
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "PULSE_SERVER": f"unix:{self.runtime_dir / 'pulse' / 'native'}",
        }

    def _env(self) -> dict[str, str]:
        home = self.runtime_dir / "home"
        home.mkdir(exist_ok=True)
        return os.environ | self.client_env | {"HOME": str(home)}

    async def _run(self, *args: str, timeout: float = 10.0) -> tuple[int, str]:
        """Run a PulseAudio utility against the daemon; (exit status, output)."""
        proc = await asyncio.create_subprocess_exec(
            *args,
            env=self._env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with asyncio.timeout(timeout):
                out, _ = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise PulseError(
                f"{' '.join(args)} did not finish in {timeout:g} s"
            ) from None
        return proc.returncode or 0, out.decode(errors="replace").strip()

    async def start(self) -> None:
        """Start the daemon with the null sink and make its monitor the default source."""
        for tool in ("pulseaudio", "pactl", "paplay"):
            if shutil.which(tool) is None:
                raise PulseError(
                    f"{tool} is not installed (apt-get install pulseaudio-utils)"
                )
        self._log_handle = os.open(
            self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644
        )
        self._daemon = await asyncio.create_subprocess_exec(
            "pulseaudio",
            "--daemonize=no",
            "--system=false",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "--disallow-module-loading=false",
            "--log-target=stderr",
            "-n",
            "--load=module-native-protocol-unix auth-anonymous=1",
            f"--load=module-null-sink sink_name={SINK} rate={SAMPLE_RATE} channels=1 format=s16le",
            env=self._env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=self._log_handle,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while (
            True
        ):  # pactl is refused until the daemon listens; there is nothing to await
            if self._daemon.returncode is not None:
                raise PulseError(
                    f"pulseaudio exited with status {self._daemon.returncode} (see {self.log})"
                )
            status, _out = await self._run("pactl", "info", timeout=5.0)
            if status == 0:
                break
            if time.monotonic() > deadline:
                raise PulseError(f"pulseaudio did not answer in {START_TIMEOUT_S:g} s")
            await asyncio.sleep(0.1)
        status, out = await self._run("pactl", "set-default-source", f"{SINK}.monitor")
        if status != 0:
            raise PulseError(f"pactl set-default-source failed: {out}")

    async def play(self, wav: Path) -> float:
        """Start playing `wav` into the sink; returns the wall time playback was started."""
        self._player = await asyncio.create_subprocess_exec(
            "paplay",
            f"--device={SINK}",
            str(wav),
            env=self._env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return time.time()

    @property
    def finished(self) -> bool:
        """Whether the player has exited."""
        return self._player is not None and self._player.returncode is not None

    async def stop(self) -> None:
        """Stop the player and the daemon (by their process ids) and remove the runtime dir."""
        for proc in (self._player, self._daemon):
            if proc is None or proc.returncode is not None:
                continue
            proc.terminate()
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        self._player = self._daemon = None
        if self._log_handle is not None:
            os.close(self._log_handle)
            self._log_handle = None
        with contextlib.suppress(OSError):
            shutil.rmtree(self.runtime_dir)
