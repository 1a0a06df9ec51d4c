"""End-to-end proof: a real Home Assistant process, real audio over HTTP and a virtual microphone.

`python -m e2e` (what `scripts/e2e` runs) builds a test programme from real fold-4 clips of
``../shared/data`` (household negatives, then a real cry, then silence), starts ``hass`` on a free
local port with a fresh configuration, onboards it through its HTTP API, adds Baby Monitor twice
through the config-flow API — a stream URL served live by a local HTTP server, and ``pulse:default``
fed by a user-mode PulseAudio null sink — plays the programme into both, watches the websocket API
and checks with timestamps that ``crying`` turns on and off when the engine says it should, that the
event entity and ``baby_monitor_event`` fire in order and that nothing fires during the negatives.
It then screenshots the device page in headless Chromium and stops everything; the exit status is 0
only if every check held.
"""
