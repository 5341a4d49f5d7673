"""What keeps stored files, written by a model, from acting on the viewer or its users.

Contracts:

1. The viewer's own pages run no script at all (`VIEWER_POLICY`: `script-src 'none'`).
2. A stored file is served with `content_policy`: CSP `sandbox`, so even in a tab of its
   own it lives in an opaque origin that can read no cookie of the viewer and call no
   viewer URL with its credentials; it loads nothing from the network (`default-src 'none'`).
3. Scripts run only in the primary page of interactive content (the quiz page a builder
   rendered from its layout, where model text is escaped): the hashes of *that page's*
   inline scripts, computed when it is served, are the only scripts allowed. Every other
   file, model-written HTML of a code tree included, gets `script-src 'none'`.
4. A path names a file only when it is one of the content's recorded files (an exact
   key of `StoredContent.keys`): `..`, encoded `..`, absolute paths and unknown names match
   none; links in a local store are refused by `ObjectStore.get`.
5. With a token configured every request must carry it (`Authorization: Bearer`, the
   cookie set by `?token=`); listening beyond loopback without one is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from html.parser import HTMLParser

TOKEN_COOKIE = "agentflows_viewer_token"
VIEWER_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
"""CSP of the viewer's own pages: no script, styles and frames from the viewer only."""
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def content_policy(html: bytes | None = None, *, run_scripts: bool = False) -> str:
    """CSP of a stored file: sandboxed, offline; with `run_scripts`, the inline scripts of `html` by hash."""
    scripts = " ".join(f"'{h}'" for h in inline_script_hashes(html)) if run_scripts and html else ""
    sandbox = "sandbox allow-scripts allow-forms" if scripts else "sandbox"
    scripts = scripts or "'none'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; "
        "img-src data:; font-src data:; media-src data:; form-action 'none'; base-uri 'none'; "
        f"frame-ancestors 'self'; {sandbox}"
    )


def frame_sandbox(run_scripts: bool) -> str:
    """The `sandbox` attribute of the iframe a content page shows its primary file in (never same-origin)."""
    return "allow-scripts allow-forms" if run_scripts else ""


class _InlineScripts(HTMLParser):
    """Collects the text of every `<script>` element without a `src`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and not any(name == "src" for name, _ in attrs):
            self._current = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._current is not None:
            self.scripts.append("".join(self._current))
            self._current = None


def inline_script_hashes(html: bytes) -> list[str]:
    """CSP source expressions (`sha256-…`) of the inline scripts of an HTML document."""
    parser = _InlineScripts()
    parser.feed(html.decode("utf-8", errors="replace"))
    parser.close()
    return [
        "sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() for script in parser.scripts
    ]


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback name or address (only this machine can reach it)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def token_matches(given: str | None, token: str) -> bool:
    """Whether `given` is the token (compared in constant time)."""
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header."""
    scheme, _, value = (authorization or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None
