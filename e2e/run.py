"""The end-to-end run: start everything, play the programme into both sources, check, clean up.

Timing bounds (all derived, none tuned to a run):

* **Crying on.** The programme is scanned offline with the shipped engine at ten phases of the
  1-s analysis grid (`program.build_program`), which gives the earliest and latest time, in
  programme seconds, at which the detector turns on; the chosen cry turns it on within the design's
  p95 latency (4 s) at every phase. Live, ``crying`` must turn on no earlier than the earliest
  minus `EARLY_TOLERANCE_S` (the 0.1-s phase grid and clock jitter) and no later than the latest
  plus `TRANSPORT_MARGIN_S` (stream/PulseAudio buffering, measured below 0.1 s here, ffmpeg's
  0.1-s blocks, and inference queued behind other work on a busy 2-core machine).
* **Crying off.** The same scan gives when the hold time (3 s after the last window above
  threshold) ends; live, ``off`` must fall in that range widened the same way, and
  ``off - on`` must equal the sound's duration (from ``cry_stopped``) less what was heard when
  it turned on (``cry_started``'s duration), plus the window smear and the hold time.
* **Quiet.** Nothing may fire from the moment an entry is added until the cry's onset, and
  laughter never (the scan shows the programme peaks far below the laughter threshold).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
import contextlib
from dataclasses import dataclass, field
import json
import math
from pathlib import Path
import signal
import time
import traceback
from typing import Any

from baby_monitor_engine.pcm import SAMPLE_RATE, pcm16_to_float

from . import cpu
from .browser import BrowserError, Chromium
from .hass import HassError, HomeAssistant
from .program import Program, build_program
from .pulse import VirtualMicrophone
from .stream import LiveStream
from .ws import EventWatcher, Record

ROOT = Path(__file__).resolve().parent.parent
INTEGRATION = ROOT / "custom_components" / "baby_monitor"

TRANSPORT_MARGIN_S = 1.5
EARLY_TOLERANCE_S = 0.3
SYNC_TOLERANCE_S = 0.5
"""The binary sensor, the event entity and the bus event of one change come from one callback."""
HOLD_TOLERANCE_S = 0.6
WARMUP_TIMEOUT_S = 90.0
RUN_TIMEOUT_S = 900.0
BUS_EVENT = "baby_monitor_event"
ISSUES_EVENT = "repairs_issue_registry_updated"
FAULT_S = 10.0
"""How long the e2e's scorer fault lasts: ten failed windows take 5 s at the 0.5-s hop."""
FAULT_ERRORS = ("failed; it is dropped", "windows in a row could not be scored")
"""What the integration logs, as it must, about the scorer fault (once a room each)."""
OFF_STATES = ("unknown", "unavailable")


@dataclass(slots=True)
class Check:
    """One thing the run verified."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(slots=True)
class Room:
    """One Baby Monitor entry and what happened to it."""

    key: str
    title: str
    menu: str
    form: dict[str, Any]
    entry_id: str = ""
    device_id: str = ""
    added: float = 0.0
    start: float | None = None
    entities: dict[str, str] = field(default_factory=dict)
    """Entity ids by key: crying, laughing, sound, sound_level, listening."""

    def states(
        self, records: list[Record], key: str
    ) -> Iterator[tuple[float, str, Record]]:
        """State changes (not attribute-only updates) of one of its entities."""
        entity_id = self.entities.get(key)
        for record in records:
            if record.event_type != "state_changed" or record.entity_id != entity_id:
                continue
            old = record.data.get("old_state") or {}
            new = record.new_state
            if new is None or old.get("state") == new.get("state"):
                continue
            yield record.fired, str(new.get("state")), record

    def sound_events(self, records: list[Record]) -> list[tuple[float, str]]:
        """Events of its event entity: (time, event_type).

        An event entity's state is the time of its last event; a time not seen before is a new
        event (coming back from unavailable restores the old one).
        """
        found: list[tuple[float, str]] = []
        seen: set[str] = set()
        for fired, state, record in self.states(records, "sound"):
            if state in OFF_STATES or state in seen:
                continue
            seen.add(state)
            new = record.new_state or {}
            event_type = (new.get("attributes") or {}).get("event_type")
            found.append((fired, str(event_type)))
        return found

    def bus_events(self, records: list[Record]) -> list[tuple[float, dict[str, Any]]]:
        """Its `baby_monitor_event`s: (time, data)."""
        return [
            (record.fired, record.data)
            for record in records
            if record.event_type == BUS_EVENT
            and record.data.get("device_id") == self.device_id
        ]

    def level_ready(self, records: list[Record]) -> bool:
        """Whether the sound level has a value: the source is up and the first window is scored."""
        return any(
            _is_number(state) for _t, state, _r in self.states(records, "sound_level")
        )

    def cry_finished(self, records: list[Record]) -> bool:
        """Whether its cry_stopped has been fired on the bus."""
        return any(
            data.get("type") == "cry_stopped" for _t, data in self.bus_events(records)
        )


def _is_number(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


class Timeline:
    """What happened when, printed at the end (and saved)."""

    def __init__(self) -> None:
        """Start empty."""
        self.items: list[tuple[float, str, str]] = []

    def add(self, when: float, who: str, what: str) -> None:
        """Note something at wall time `when`."""
        self.items.append((when, who, what))

    def now(self, who: str, what: str) -> None:
        """Note something now, and say it as it happens."""
        self.add(time.time(), who, what)
        print(f"e2e: {what}" if who == "run" else f"e2e: {who}: {what}", flush=True)

    def render(self, zeros: dict[str, float]) -> list[str]:
        """Lines in time order; `T+` is seconds since that room's programme started."""
        lines = []
        for when, who, what in sorted(self.items, key=lambda item: item[0]):
            clock = (
                time.strftime("%H:%M:%S", time.localtime(when))
                + f".{int(when % 1 * 1000):03d}"
            )
            zero = zeros.get(who)
            rel = f"T{when - zero:+7.2f}s" if zero is not None else " " * 10
            lines.append(f"{clock} {rel}  {who:<10} {what}")
        return lines


def _room_timeline(room: Room, records: list[Record], timeline: Timeline) -> None:
    """Add a room's state changes and events to the timeline."""
    for key in ("crying", "laughing"):
        for fired, state, _record in room.states(records, key):
            timeline.add(fired, room.key, f"{room.entities[key]} -> {state}")
    first_level = next(
        ((t, s) for t, s, _r in room.states(records, "sound_level") if _is_number(s)),
        None,
    )
    if first_level is not None:
        timeline.add(
            first_level[0],
            room.key,
            f"first window scored (level {first_level[1]} dBFS)",
        )
    for fired, event_type in room.sound_events(records):
        timeline.add(
            fired, room.key, f"{room.entities['sound']} event_type={event_type}"
        )
    for fired, data in room.bus_events(records):
        timeline.add(
            fired,
            room.key,
            f"{BUS_EVENT} type={data.get('type')} confidence={data.get('confidence')} "
            f"duration={data.get('duration')}",
        )


def check_room(room: Room, program: Program, records: list[Record]) -> list[Check]:
    """Everything that must hold for one room, with the measured timings."""
    name = room.key
    checks: list[Check] = []
    if room.start is None:
        return [Check(f"{name}: programme played", False, "never started")]
    expect = program.expectation
    onset = room.start + program.cry_onset_s
    crying = list(room.states(records, "crying"))
    laughing = list(room.states(records, "laughing"))
    sounds = room.sound_events(records)
    bus = room.bus_events(records)

    early = [
        f"{room.entities['crying']}={s}"
        for t, s, _r in crying
        if s == "on" and t < onset
    ]
    early += [
        f"{room.entities['laughing']}={s}"
        for t, s, _r in laughing
        if s == "on" and t < onset
    ]
    early += [f"event {e}" for t, e in sounds if t < onset]
    early += [f"bus {d.get('type')}" for t, d in bus if t < onset]
    checks.append(
        Check(
            f"{name}: nothing fires during the {program.cry_onset_s:.0f} s of negatives",
            not early,
            ", ".join(early)
            or f"quiet from entry added to onset ({onset - room.added:.1f} s)",
        )
    )

    ons = [t for t, s, _r in crying if s == "on"]
    offs = [t for t, s, _r in crying if s == "off" and ons and t > ons[0]]
    lo_on = expect.on_s[0] - program.cry_onset_s - EARLY_TOLERANCE_S
    hi_on = expect.on_s[1] - program.cry_onset_s + TRANSPORT_MARGIN_S
    t_on = ons[0] if ons else None
    if t_on is None:
        checks.append(
            Check(f"{name}: crying turns on after the cry starts", False, "never on")
        )
    else:
        latency = t_on - onset
        checks.append(
            Check(
                f"{name}: crying on {latency:.2f} s after the cry starts",
                lo_on <= latency <= hi_on,
                f"allowed {lo_on:.2f}..{hi_on:.2f} s (offline scan {expect.on_s[0] - program.cry_onset_s:.1f}"
                f"..{expect.on_s[1] - program.cry_onset_s:.1f} s + transport)",
            )
        )
    t_off = offs[0] if offs else None
    stop = next((d for _t, d in bus if d.get("type") == "cry_stopped"), None)
    if t_on is None or t_off is None:
        checks.append(
            Check(f"{name}: crying turns off after the hold time", False, "never off")
        )
    else:
        rel = t_off - room.start
        lo_off = expect.off_s[0] - EARLY_TOLERANCE_S
        hi_off = expect.off_s[1] + TRANSPORT_MARGIN_S
        episode = float(stop.get("duration", math.nan)) if stop else math.nan
        begun = next((d for _t, d in bus if d.get("type") == "cry_started"), {})
        heard = float(begun.get("duration", math.nan))
        # on `heard` s after the sound's estimated start (confirm time included); off `hold`
        # after its last window above threshold, which ends `smear_s` after the sound's end
        held = t_off - t_on - episode + heard - program.smear_s
        checks.append(
            Check(
                f"{name}: crying off {t_off - (room.start + program.cry_end_s):.2f} s after the cry ends, "
                f"{held:.2f} s after the last detection",
                lo_off <= rel <= hi_off
                and abs(held - program.hold_s) <= HOLD_TOLERANCE_S,
                f"off at T+{rel:.2f} s, allowed {lo_off:.2f}..{hi_off:.2f} s; hold {program.hold_s:g} s "
                f"(on for {t_off - t_on:.2f} s = episode {episode:.1f} s - {heard:.1f} s "
                f"heard at on + window smear {program.smear_s:.2f} s + hold)",
            )
        )
    on_count = len(ons)
    final = crying[-1][1] if crying else "?"
    checks.append(
        Check(
            f"{name}: exactly one crying episode",
            on_count == 1 and final == "off",
            f"turned on {on_count} time(s), now {final}",
        )
    )

    kinds = [e for _t, e in sounds]
    in_sync = (
        len(sounds) == 2
        and t_on is not None
        and t_off is not None
        and abs(sounds[0][0] - t_on) <= SYNC_TOLERANCE_S
        and abs(sounds[1][0] - t_off) <= SYNC_TOLERANCE_S
    )
    checks.append(
        Check(
            f"{name}: {room.entities.get('sound')} fires cry_started then cry_stopped",
            kinds == ["cry_started", "cry_stopped"] and in_sync,
            f"event types {kinds}",
        )
    )
    types = [d.get("type") for _t, d in bus]
    start_event = bus[0][1] if bus else {}
    bus_ok = (
        types == ["cry_started", "cry_stopped"]
        and t_on is not None
        and t_off is not None
        and abs(bus[0][0] - t_on) <= SYNC_TOLERANCE_S
        and abs(bus[1][0] - t_off) <= SYNC_TOLERANCE_S
        and float(start_event.get("confidence", 0)) >= program.thresholds["cry"]
        and stop is not None
        and float(stop.get("duration", 0)) > 0
    )
    checks.append(
        Check(
            f"{name}: {BUS_EVENT} cry_started then cry_stopped for device {room.device_id[:8]}",
            bus_ok,
            ", ".join(
                f"{d.get('type')} at T{t - room.start:+.2f}s (confidence {d.get('confidence')}, "
                f"duration {d.get('duration')} s)"
                for t, d in bus
            )
            or "none",
        )
    )
    laughs = [s for _t, s, _r in laughing if s == "on"] + [
        e for _t, e in sounds if "laughter" in e
    ]
    laughs += [str(d.get("type")) for _t, d in bus if "laughter" in str(d.get("type"))]
    checks.append(
        Check(
            f"{name}: no laughter at any time", not laughs, ", ".join(laughs) or "none"
        )
    )
    ready = next((t for t, s, _r in crying if s not in OFF_STATES), None)
    drops = [
        t
        for t, s, _r in crying
        if s == "unavailable" and ready is not None and t > ready
    ]
    checks.append(
        Check(
            f"{name}: source stayed up",
            ready is not None and not drops,
            f"unavailable {len(drops)} time(s) after it came up",
        )
    )
    return checks


def _log_errors(log: Path) -> list[str]:
    """Error lines of Home Assistant's log that concern the integration."""
    if not log.exists():
        return []
    return [
        line
        for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
        if " ERROR " in line
        and "baby_monitor" in line
        and not any(expected in line for expected in FAULT_ERRORS)
    ]


def _tail(path: Path, lines: int = 60) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(
        path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    )


async def _registry(watcher: EventWatcher, rooms: list[Room]) -> None:
    """Find each room's device and entity ids in the registries."""
    devices = await watcher.call("config/device_registry/list")
    entities = await watcher.call("config/entity_registry/list")
    for room in rooms:
        device = next(
            (d for d in devices if room.entry_id in d.get("config_entries", [])), None
        )
        if device is None:
            raise HassError(f"{room.key}: no device for entry {room.entry_id}")
        room.device_id = device["id"]
        for entity in entities:
            if entity.get("config_entry_id") == room.entry_id:
                key = str(entity["unique_id"]).removeprefix(f"{room.entry_id}-")
                room.entities[key] = entity["entity_id"]
        missing = {"crying", "laughing", "sound", "sound_level"} - set(room.entities)
        if missing:
            raise HassError(f"{room.key}: entities {sorted(missing)} missing")


@dataclass(slots=True)
class Options:
    """Command-line options of `python -m e2e`."""

    out: Path
    screenshot: Path
    cpu_report: Path
    microphone: bool = True
    browser: bool = True
    cpu: bool = True


class Run:
    """One end-to-end run."""

    def __init__(self, options: Options) -> None:
        """Nothing starts until `execute`."""
        self.options = options
        self.timeline = Timeline()
        self.checks: list[Check] = []
        self.rooms: list[Room] = []
        self.program: Program | None = None
        self.hass: HomeAssistant | None = None

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        """Record a check and say it."""
        self.checks.append(Check(name, ok, detail))
        print(
            f"e2e: {'PASS' if ok else 'FAIL'} {name}"
            + (f" ({detail})" if detail else ""),
            flush=True,
        )
        return ok

    async def execute(self) -> int:
        """Run everything, stop Home Assistant, report; 0 only if every check held."""
        out = self.options.out
        out.mkdir(parents=True, exist_ok=True)
        for stale in (
            "timeline.txt",
            "results.json",
            "hass.out",
            "chromium.log",
            "pulseaudio.log",
            "e2e_device.png",
            "hass_cpu.json",
        ):
            (out / stale).unlink(missing_ok=True)
        # Cleanups run last-registered first: the websocket, Home Assistant, then its sources.
        async with contextlib.AsyncExitStack() as cleanup:
            try:
                async with asyncio.timeout(RUN_TIMEOUT_S):
                    await self._execute(out, cleanup)
            except asyncio.CancelledError:
                self.check("run completed", False, "interrupted")
            except TimeoutError:
                self.check(
                    "run completed", False, f"took longer than {RUN_TIMEOUT_S:g} s"
                )
            except Exception as err:  # noqa: BLE001 - whatever failed, stop everything and report
                traceback.print_exc()
                self.check("run completed", False, f"{type(err).__name__}: {err}")
        return self._report(out)

    async def _quietly(self, what: str, stop: Callable[[], Awaitable[object]]) -> None:
        """Run a clean-up step; a failure is a failed check, never a reason to skip the rest."""
        try:
            await stop()
        except Exception as err:  # noqa: BLE001 - keep cleaning up
            self.check(what, False, f"{type(err).__name__}: {err}")

    async def _stop_hass(self, hass: HomeAssistant) -> None:
        """Stop Home Assistant with SIGTERM and look through its log."""
        code = await hass.stop()
        self.check(
            "Home Assistant stopped on SIGTERM", code == 0, f"exit status {code}"
        )
        errors = _log_errors(hass.log)
        self.check(
            "no errors from baby_monitor in Home Assistant's log (the fault's own aside)",
            not errors,
            "; ".join(errors[:3]) or "none",
        )

    async def _execute(self, out: Path, cleanup: contextlib.AsyncExitStack) -> None:
        timeline = self.timeline
        timeline.now("run", "scanning candidate clips with the shipped model")
        program = self.program = await asyncio.to_thread(build_program)
        wav = program.write_wav(out / "programme.wav")
        program.write_json(out / "programme.json")
        for segment in program.segments:
            timeline.now(
                "run",
                f"programme {segment.start_s:5.1f}-{segment.end_s:5.1f} s {segment.label:<9} "
                f"{segment.clip or ''}",
            )
        expect = program.expectation
        timeline.now(
            "run",
            f"offline scan ({program.model}, cry threshold {program.thresholds['cry']:.2f}): "
            f"on at {expect.on_s[0]:.1f}-{expect.on_s[1]:.1f} s, off at "
            f"{expect.off_s[0]:.1f}-{expect.off_s[1]:.1f} s; peak cry {expect.peak_cry:.3f}, "
            f"negatives <= {expect.negatives_max_cry:.2f}, laughter <= {expect.max_laughter:.2f}",
        )
        stream = LiveStream(program.pcm())
        cleanup.push_async_callback(self._quietly, "stopping the stream", stream.stop)
        url = await stream.start()
        timeline.now("run", f"live stream at {url}")
        mic: VirtualMicrophone | None = None
        if self.options.microphone:
            mic = VirtualMicrophone(out / "pulseaudio.log")
            cleanup.push_async_callback(self._quietly, "stopping PulseAudio", mic.stop)
            await mic.start()
            timeline.now(
                "run", f"virtual microphone up (PulseAudio in {mic.runtime_dir})"
            )
        hass = self.hass = HomeAssistant(
            out / "config", INTEGRATION, mic.client_env if mic else {}
        )
        cleanup.push_async_callback(self._stop_hass, hass)
        timeline.now(
            "run", f"starting hass on {hass.base_url} (config in {hass.config_dir})"
        )
        started = time.monotonic()
        await hass.start()
        timeline.now("run", f"API up after {time.monotonic() - started:.1f} s")
        steps = await hass.onboard()
        await hass.wait_running()
        self.check(
            "Home Assistant started and onboarded",
            True,
            f"steps {', '.join(steps)}; running after {time.monotonic() - started:.1f} s",
        )
        assert hass.tokens is not None
        watcher = EventWatcher(hass.session, hass.base_url, hass.tokens.access_token)
        cleanup.push_async_callback(
            self._quietly, "closing the websocket", watcher.close
        )
        await watcher.connect()
        await watcher.subscribe("state_changed")
        await watcher.subscribe(BUS_EVENT)
        await watcher.subscribe(ISSUES_EVENT)
        await self._add_rooms(hass, watcher, url, with_microphone=mic is not None)
        ready = await watcher.wait_for(
            lambda records: all(room.level_ready(records) for room in self.rooms),
            WARMUP_TIMEOUT_S,
        )
        if not self.check("every source delivers audio (first window scored)", ready):
            return
        starts = [stream.play()]
        if mic is not None:
            starts.append(mic.play(wav))
        for room, start in zip(self.rooms, await asyncio.gather(*starts), strict=True):
            room.start = start
            timeline.add(start, room.key, "programme starts (negatives)")
            timeline.add(
                start + program.cry_onset_s, room.key, "programme: the cry starts"
            )
            timeline.add(
                start + program.cry_end_s, room.key, "programme: the cry ends (silence)"
            )
        timeline.now(
            "run",
            f"playing the {program.duration_s:.0f}-s programme into every source",
        )
        zero = max(room.start or 0.0 for room in self.rooms)
        deadline = (
            zero + max(program.duration_s, expect.off_s[1] + TRANSPORT_MARGIN_S) + 5.0
        )
        finished = await watcher.wait_for(
            lambda records: all(room.cry_finished(records) for room in self.rooms),
            deadline - time.time(),
        )
        timeline.now(
            "run",
            "every cry_stopped received"
            if finished
            else "gave up waiting for cry_stopped",
        )
        # Watch to the end of the programme, so that anything firing late is seen too.
        if (left := zero + program.duration_s + 1.0 - time.time()) > 0:
            await asyncio.sleep(left)
        for room in self.rooms:
            _room_timeline(room, watcher.records, timeline)
            for item in check_room(room, program, watcher.records):
                self.check(item.name, item.ok, item.detail)
        for room in self.rooms:
            await self._check_diagnostics(hass, room, program)
        probe, *live = stream.connections or [(0.0, None)]
        self.check(
            "stream: the config flow's test connection, then one live connection (no reconnects)",
            probe[1] is not None and len(live) == 1 and live[0][1] is None,
            f"{len(stream.connections)} connection(s)",
        )
        await self._teach(watcher, stream, program)
        await self._scorer_fault(watcher)
        if self.options.browser:
            await self._screenshot(hass, out)
        if self.options.cpu:
            await self._measure_cpu(hass, watcher, out, program)

    async def _teach(
        self, watcher: EventWatcher, stream: LiveStream, program: Program
    ) -> None:
        """Tell the stream room its cry was not one, replay the programme: no cry this time.

        Then "Forget what this room learnt" makes it score as shipped again (for the checks
        that follow).
        """
        room = self.rooms[0]
        learnt = room.entities.get("learnt_examples", "")

        def count(value: str, since: float) -> Callable[[list[Record]], bool]:
            return lambda records: any(
                state == value and fired >= since
                for fired, state, _record in room.states(records, "learnt_examples")
            )

        began = time.time()
        self.timeline.now(room.key, 'teach: "not a cry" through baby_monitor.teach')
        await watcher.call(
            "call_service",
            domain="baby_monitor",
            service="teach",
            target={"entity_id": room.entities["crying"]},
            service_data={"sound": "cry", "verdict": "not_this_sound"},
        )
        taught = await watcher.wait_for(count("1", began), 10.0)
        self.check(
            f"{room.key}: baby_monitor.teach is learnt (learnt examples 1)",
            taught,
            f"{learnt} {'is' if taught else 'is not'} 1",
        )
        replayed = await stream.play()
        self.timeline.add(replayed, room.key, "teach: the programme plays again")
        await asyncio.sleep(program.duration_s + TRANSPORT_MARGIN_S + 2.0)
        cries = [
            data
            for fired, data in room.bus_events(watcher.records)
            if fired >= replayed and data.get("type") == "cry_started"
        ]
        heard = sum(
            1
            for fired, state, _r in room.states(watcher.records, "sound_level")
            if fired >= replayed and _is_number(state)
        )
        self.check(
            f"{room.key}: taught not a cry, the same sound played again raises no cry",
            taught and not cries and heard > 0,
            f"{len(cries)} cry_started while replayed; {heard} level readings",
        )
        forgot = time.time()
        await watcher.call(
            "call_service",
            domain="button",
            service="press",
            target={"entity_id": room.entities["forget_learnt"]},
        )
        self.check(
            f'{room.key}: "Forget what this room learnt" empties it',
            await watcher.wait_for(count("0", forgot), 10.0),
        )

    async def _scorer_fault(self, watcher: EventWatcher) -> None:
        """Make scoring raise on every window for FAULT_S, then work again.

        Each room must go unavailable with a scoring_failed repair issue, then be live again
        with the issue withdrawn.
        """
        began = time.time()
        self.timeline.now("run", f"fault: scoring raises for {FAULT_S:g} s")
        await watcher.call(
            "call_service",
            domain="e2e_fault",
            service="break_scoring",
            service_data={"seconds": FAULT_S},
        )

        def since(records: list[Record]) -> list[Record]:
            return [record for record in records if record.fired >= began]

        def issue(room: Room, action: str) -> Callable[[list[Record]], bool]:
            wanted = f"scoring_failed_{room.entry_id}"
            return lambda records: any(
                record.event_type == ISSUES_EVENT
                and record.data.get("issue_id") == wanted
                and record.data.get("action") == action
                for record in since(records)
            )

        def crying(room: Room, unavailable: bool) -> Callable[[list[Record]], bool]:
            return lambda records: any(
                (state == "unavailable") == unavailable and fired >= began
                for fired, state, _record in room.states(records, "crying")
            )

        for room in self.rooms:
            down = await watcher.wait_for(crying(room, True), FAULT_S + 5.0)
            raised = await watcher.wait_for(issue(room, "create"), 5.0)
            self.check(
                f"{room.key}: scoring failing goes unavailable with a repair issue",
                down and raised,
                f"unavailable {down}, scoring_failed issue raised {raised}",
            )
        for room in self.rooms:
            back = await watcher.wait_for(crying(room, False), FAULT_S + 10.0)
            withdrawn = await watcher.wait_for(issue(room, "remove"), 5.0)
            self.check(
                f"{room.key}: scoring working again is live and withdraws the issue",
                back and withdrawn,
                f"live again {back} ({time.time() - began:.1f} s after the fault began), "
                f"issue withdrawn {withdrawn}",
            )

    async def _measure_cpu(
        self, hass: HomeAssistant, watcher: EventWatcher, out: Path, program: Program
    ) -> None:
        """Measure hass's CPU listening (default backend, then numpy) vs paused, and the engine's.

        Runs after every other check: switching the backend reloads the entries and pausing
        closes the sources. Written to hass_cpu.json here and beside the benchmark report.
        """
        rooms = self.rooms
        sources = len(rooms)
        diagnostics = await hass.request(
            "GET", f"/api/diagnostics/config_entry/{rooms[0].entry_id}"
        )
        runtime = (diagnostics.get("data") or {}).get("runtime") or {}
        default = str((runtime.get("model") or {}).get("backend", "unknown"))
        listening: dict[str, cpu.Stretch] = {}

        async def stretch(count: int) -> cpu.Stretch:
            before = cpu.sample(hass.pid)
            await asyncio.sleep(cpu.STRETCH_S)
            return cpu.Stretch(before, cpu.sample(hass.pid), count)

        self.timeline.now(
            "run", f"CPU: {cpu.STRETCH_S:g} s listening ({default}, {sources} rooms)"
        )
        listening[default] = await stretch(sources)
        if default != "numpy":
            reloaded = time.time()
            for room in rooms:
                await hass.set_options(room.entry_id, {"backend": "numpy"})
            scored = await watcher.wait_for(
                lambda records: all(
                    any(
                        t > reloaded and _is_number(s)
                        for t, s, _r in room.states(records, "sound_level")
                    )
                    for room in rooms
                ),
                WARMUP_TIMEOUT_S,
            )
            if not self.check("CPU: every room scores again on numpy", scored):
                return
            await asyncio.sleep(cpu.SETTLE_S)
            self.timeline.now("run", f"CPU: {cpu.STRETCH_S:g} s listening (numpy)")
            listening["numpy"] = await stretch(sources)
        await watcher.call(
            "call_service",
            domain="switch",
            service="turn_off",
            target={"entity_id": [room.entities["listening"] for room in rooms]},
        )
        await asyncio.sleep(cpu.SETTLE_S)
        self.timeline.now(
            "run",
            f"CPU: {cpu.STRETCH_S:g} s paused; the engine alone meanwhile, paced as hass runs it",
        )
        audio = pcm16_to_float(program.pcm())

        def engine() -> tuple[dict[str, float], dict[str, float]]:
            paced = {
                b: cpu.paced_engine_ms_per_audio_s(b, audio, sources) for b in listening
            }
            tight = audio[: round(cpu.ENGINE_AUDIO_S * SAMPLE_RATE)]
            return paced, {b: cpu.engine_ms_per_audio_s(b, tight) for b in listening}

        paused, (engine_ms, tight_ms) = await asyncio.gather(
            stretch(0), asyncio.to_thread(engine)
        )
        result = cpu.figures(listening, paused, engine_ms, sources, tight_ms) | {
            "default_backend": default,
            "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        text = json.dumps(result, indent=2) + "\n"
        (out / "hass_cpu.json").write_text(text, encoding="utf-8")
        self.options.cpu_report.parent.mkdir(parents=True, exist_ok=True)
        self.options.cpu_report.write_text(text, encoding="utf-8")
        for backend, row in result["backends"].items():
            self.timeline.now(
                "run",
                f"CPU, {backend}: hass {row['hass_listening']:.2f} ms per audio s listening, "
                f"{result['hass_paused']:.2f} paused, engine {row['engine']:.2f} paced "
                f"({row['engine_tight']:.2f} tight) -> overhead "
                f"{row['overhead']:.2f} ms (target <= {cpu.TARGET_MS:g}); ffmpeg {row['ffmpeg']} ms",
            )

    async def _check_diagnostics(
        self, hass: HomeAssistant, room: Room, program: Program
    ) -> None:
        """Compare the entry's diagnostics with the scan: same model, no backlog, one connection."""
        diagnostics = await hass.request(
            "GET", f"/api/diagnostics/config_entry/{room.entry_id}"
        )
        runtime = (diagnostics.get("data") or {}).get("runtime") or {}
        sha = str((runtime.get("model") or {}).get("sha256", ""))
        dropped = runtime.get("windows_dropped")
        connections = runtime.get("connections")
        self.check(
            f"{room.key}: diagnostics show the scanned model, no dropped windows, one connection",
            sha == program.model_sha256 and dropped == 0 and connections == 1,
            f"model {sha[:12]} (scanned {program.model_sha256[:12]}), "
            f"{runtime.get('windows_scored')} windows scored, {dropped} dropped, "
            f"{connections} connection(s)",
        )

    async def _add_rooms(
        self,
        hass: HomeAssistant,
        watcher: EventWatcher,
        url: str,
        *,
        with_microphone: bool,
    ) -> None:
        """Add the stream (and microphone) rooms through the config-flow API."""
        self.rooms = [
            Room("stream", "E2E Stream", "url", {"url": url, "name": "E2E Stream"})
        ]
        if with_microphone:
            self.rooms.append(
                Room(
                    "microphone",
                    "E2E Microphone",
                    "microphone",
                    {"device": "pulse:default", "name": "E2E Microphone"},
                )
            )
        for room in self.rooms:
            entry = await hass.add_entry(room.menu, room.form)
            room.entry_id, room.added = entry["entry_id"], time.time()
            self.timeline.now(
                room.key,
                f"entry added through the config flow ({room.menu}: {room.form})",
            )
        await _registry(watcher, self.rooms)
        self.check(
            "config flows created the entries and their entities",
            True,
            "; ".join(
                f"{room.key}: device {room.device_id[:8]}, {len(room.entities)} entities"
                for room in self.rooms
            ),
        )

    async def _screenshot(self, hass: HomeAssistant, out: Path) -> None:
        """Screenshot the stream room's device page, logged in as the owner."""
        room = self.rooms[0]
        tokens = hass.tokens
        assert tokens is not None
        page = f"/config/devices/device/{room.device_id}"
        chromium = Chromium(out / "chromium.log")
        shot = out / "e2e_device.png"
        try:
            started = time.monotonic()
            await chromium.start()
            await chromium.screenshot_logged_in(
                hass.base_url,
                page,
                {
                    "access_token": tokens.access_token,
                    "refresh_token": tokens.refresh_token,
                    "expires_in": tokens.expires_in,
                    "expires": int((time.time() + tokens.expires_in) * 1000),
                    "token_type": "Bearer",
                    "hassUrl": hass.base_url,
                    "clientId": hass.client_id,
                },
                (room.title, "Crying", "Sound level"),
                shot,
            )
        except (BrowserError, OSError, TimeoutError) as err:
            self.check("device page screenshot", False, f"{type(err).__name__}: {err}")
            return
        finally:
            await chromium.stop()
        target = self.options.screenshot
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(shot.read_bytes())
        self.check(
            "device page screenshot",
            True,
            f"{page} -> {target} ({target.stat().st_size // 1024} KiB, {time.monotonic() - started:.1f} s)",
        )

    def _report(self, out: Path) -> int:
        """Print and save the timeline and the checks; the exit status."""
        zeros = {room.key: room.start for room in self.rooms if room.start is not None}
        lines = self.timeline.render(zeros)
        failed = [check for check in self.checks if not check.ok]
        ok = bool(self.checks) and not failed
        summary = [
            *(
                f"{'PASS' if check.ok else 'FAIL'} {check.name}"
                + (f" -- {check.detail}" if check.detail else "")
                for check in self.checks
            ),
            f"e2e: {'PASS' if ok else 'FAIL'} ({len(self.checks) - len(failed)}/{len(self.checks)} checks held)",
        ]
        (out / "timeline.txt").write_text(
            "\n".join([*lines, "", *summary]) + "\n", encoding="utf-8"
        )
        (out / "results.json").write_text(
            json.dumps(
                {
                    "ok": ok,
                    "checks": [
                        {"name": c.name, "ok": c.ok, "detail": c.detail}
                        for c in self.checks
                    ],
                    "rooms": {
                        room.key: {
                            "entry_id": room.entry_id,
                            "device_id": room.device_id,
                            "entities": room.entities,
                            "programme_start": room.start,
                        }
                        for room in self.rooms
                    },
                    "programme": self.program.as_dict() if self.program else None,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        print(
            "\n===== e2e timeline (T = seconds since that source's programme started) ====="
        )
        print("\n".join(lines))
        print("===== e2e checks =====")
        print("\n".join(summary))
        if not ok and (hass := self.hass) is not None:
            log = hass.log if hass.log.exists() else hass.output
            print(f"===== tail of {log} =====")
            print(_tail(log))
        print(f"e2e: logs, timeline and results in {out}", flush=True)
        return 0 if ok else 1


def main(options: Options) -> int:
    """Run with a SIGTERM handler that cancels the run (so that everything is still cleaned up)."""

    async def runner() -> int:
        task = asyncio.current_task()
        assert task is not None
        cancel: Callable[[], Any] = task.cancel
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, cancel)
        return await Run(options).execute()

    return asyncio.run(runner())
