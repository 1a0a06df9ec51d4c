"""Stream URLs: which ones ffmpeg may open, and how they are shown (credentials never are)."""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

from .protocol import SourceError

__all__ = [
    "NETWORK_SCHEMES",
    "redact_text",
    "redact_url",
    "strip_credentials",
    "validate_url",
]

NETWORK_SCHEMES: Final = frozenset(
    {"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt"}
)
"""URL schemes a stream source may use; scheme-less strings and file: URLs are file paths."""
SCHEME_RE: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")
_USERINFO_RE: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s?#]*)@"
)
_SECRET_QUERY_RE: Final = re.compile(
    r"(?P<key>[?&;](?:user|username|usr|login|password|passwd|pass|pwd|token|access_token"
    r"|auth|authtoken|key|apikey|api_key|secret|signature|sig)=)[^&;#\s]*",
    re.IGNORECASE,
)
_URL_RE: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>[^\s'\"<>]*)"
)
_URL_TRAILERS: Final = ".,;:)]'"
_AUTHORITY_RE: Final = re.compile(r"(?:[A-Za-z0-9._~%-]*|\[[0-9A-Fa-f:.]+\])(?::\d*)?")


def strip_credentials(url: str) -> str:
    """Replace a URL's user name, password and well-known secret query values by ***.

    Only for identifying a source (entries' unique ids keep this form); whatever is shown to a
    person goes through `redact_url`, which keeps far less.
    """

    def _userinfo(match: re.Match[str]) -> str:
        hidden = "***:***" if ":" in match["userinfo"] else "***"
        return f"{match['scheme']}{hidden}@"

    url = _USERINFO_RE.sub(_userinfo, url)
    return _SECRET_QUERY_RE.sub(lambda match: f"{match['key']}***", url)


def _origin(scheme: str, rest: str) -> str:
    """`scheme://host:port` of a URL's part after `://`; *** when no host can be told."""
    authority = re.split(r"[?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    authority = authority.split("/", 1)[0]
    if authority and not _AUTHORITY_RE.fullmatch(authority):
        authority = "***"
    return f"{scheme.lower()}://{authority}"


def redact_url(url: str) -> str:
    """Show a stream URL as `scheme://host:port` only; a file path as it is.

    User names, passwords, paths, queries and fragments can all carry secrets (SRT
    passphrases, path tokens of NVRs and UniFi Protect, signed URLs), so none is shown.
    """
    match = _URL_RE.match(url)
    if match is None or match["scheme"].lower() == "file":
        return url
    return _origin(match["scheme"], match["rest"])


def redact_text(text: str) -> str:
    """Reduce every URL in `text` (an ffmpeg message, say) to `scheme://host:port`."""

    def _shown(match: re.Match[str]) -> str:
        if match["scheme"].lower() == "file":
            return match[0]
        rest = match["rest"]
        kept = rest.rstrip(_URL_TRAILERS)
        return _origin(match["scheme"], kept) + rest[len(kept) :]

    return _URL_RE.sub(_shown, text)


def _invalid(message: str) -> SourceError:
    return SourceError("invalid_url", message)


def validate_url(url: str) -> None:
    """Raise SourceError("invalid_url") unless url is a stream URL ffmpeg may open, or a file path."""
    if not isinstance(url, str) or not url.strip():
        raise _invalid("no URL given")
    shown = redact_url(url)
    if url != url.strip():
        raise _invalid(f"URL has leading or trailing spaces: {shown!r}")
    if CONTROL_RE.search(url):
        raise _invalid(f"URL contains control characters: {shown!r}")
    if url.startswith("-"):
        raise _invalid(f"not a URL or file path: {shown!r}")
    match = SCHEME_RE.match(url)
    if match is None:
        return  # a file path
    scheme = match.group(1).lower()
    if scheme == "file":
        if not url[len("file:") :].lstrip("/"):
            raise _invalid(f"no file path in {shown!r}")
        return
    if scheme not in NETWORK_SCHEMES:
        allowed = ", ".join(sorted(NETWORK_SCHEMES))
        raise _invalid(
            f"unsupported URL scheme {scheme!r} in {shown!r} (use {allowed} or a file path)"
        )
    try:
        parts = urlsplit(url)
        host, _port = parts.hostname, parts.port
    except ValueError as err:
        raise _invalid(f"malformed URL {shown!r}: {err}") from err
    if not url[len(match.group(0)) :].startswith("//"):
        raise _invalid(f"no host in URL {shown!r}")
    if not host and not (
        scheme == "udp" and _port
    ):  # udp://@:1234 listens on all interfaces
        raise _invalid(f"no host in URL {shown!r}")
    if " " in parts.netloc:
        raise _invalid(f"spaces in the host part of {shown!r}")
