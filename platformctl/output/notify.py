"""Notifications: one message per run from the changes, delivered through apprise.

apprise speaks one URL scheme for ntfy, Gotify, Slack, Matrix, Telegram, e-mail, Discord and
plain JSON or form webhooks, so platformctl carries no client per service. It is imported only
when a notification URL is given: it loads a plugin per service (docs/notify.md).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, assert_never
from urllib.parse import urlsplit

from platformctl.clock import to_iso
from platformctl.collector.model import HostStatus
from platformctl.differ.changes import Change, HostChange, ModuleChange
from platformctl.differ.model import ModuleStatus
from platformctl.errors import DeliveryError, UsageError
from platformctl.exitcodes import Verdict, weigh
from platformctl.output.text import clean

if TYPE_CHECKING:
    from apprise import Apprise

# How a module's new status reads in a title; a status not listed reads as its own name, so a
# status added later is still counted (docs/design.md, "a new module status").
_PHRASE = {
    ModuleStatus.OK: "back to ok",
    ModuleStatus.DRIFT: "drifted",
}


# Services whose apps render Markdown in any text they are given, plain text included: apprise
# passes our plain text to them as it is (docs/notify.md, "The message"). A service apprise
# sends Markdown to is told by apprise itself (see _presenter).
MARKDOWN_SCHEMES = frozenset(
    {"discord", "mmost", "mmosts", "guilded", "zulip", "ryver", "rocket", "rockets", "revolt"}
)
# Every Markdown character a written name or reason could use for a link, an image, emphasis,
# code, a heading, a quote, a table or an entity is escaped; `@` is followed by a zero-width
# space so no @everyone, @here, @channel or Zulip's @**all** notifies anyone.
_MENTION = {"@": "@\u200b"}
_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_~|[]()<>#!&"} | _MENTION)
_MENTIONS = str.maketrans(_MENTION)


def _markdown_clean(text: str) -> str:
    """:func:`clean`'s ``text`` as an app that renders Markdown shows it: as written, with no
    link, mention or markup of its own."""
    return clean(text).translate(_MARKDOWN)


def _mention_clean(text: str) -> str:
    """:func:`clean`'s ``text`` for a service apprise escapes Markdown for itself: only its
    mentions are broken (apprise's escaping leaves ``@`` alone)."""
    return clean(text).translate(_MENTIONS)


@dataclass(frozen=True)
class Message:
    """One notification: a title counting the changes, a line per change, and apprise's type."""

    title: str
    body: str
    kind: str
    """apprise's notify type: ``success`` when everything is back to ok, else ``warning``."""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def title(changes: Sequence[Change]) -> str:
    """``platformctl: 1 module drifted on rs2000, 1 back to ok``: changes counted by what they
    became, each with its host when it is one host; hosts first."""
    parts: list[str] = []
    hosts = [c for c in changes if isinstance(c, HostChange)]
    for host_status in HostStatus:
        group = [c for c in hosts if c.after is host_status]
        if not group:
            continue
        word = "back up" if host_status is HostStatus.OK else str(host_status)
        if len(group) == 1:
            parts.append(f"host {clean(group[0].host)} {word}")
        else:
            parts.append(f"{_plural(len(group), 'host')} {word}")
    modules = [c for c in changes if isinstance(c, ModuleChange)]
    one_host = len({c.host for c in modules}) == 1
    first = True
    # Bad news first: statuses that count like ok (back to ok) close the title.
    for status in sorted(ModuleStatus, key=lambda m: weigh(m) is Verdict.FINE):
        changed = [c for c in modules if c.after is status]
        if not changed:
            continue
        count = _plural(len(changed), "module") if first else str(len(changed))
        text = f"{count} {_PHRASE.get(status, str(status))}"
        where = {c.host for c in changed}
        # Name the host of a group that has one; only once when every module change shares it.
        if len(where) == 1 and (host := changed[0].host) is not None and (first or not one_host):
            text += f" on {clean(host)}"
        parts.append(text)
        first = False
    return "platformctl: " + (", ".join(parts) or "no changes")


def line(change: Change, shown: Callable[[str], str] = clean) -> str:
    """One body line: what, where, before → after, since when, and why."""
    match change:
        case ModuleChange():
            where = f" on {shown(change.host)}" if change.host else ""
            head = f"{shown(change.module)}{where}"
            reason = change.reason
        case HostChange():
            head = f"host {shown(change.host)}"
            reason = change.reason
            if change.after is not HostStatus.OK and change.modules:
                unchecked = _plural(change.modules, "module")
                reason = f"{unchecked} unchecked" + (f": {reason}" if reason else "")
        case _:
            assert_never(change)
    before = "first check" if change.before is None else str(change.before)
    text = f"{head}: {before} → {change.after} since {to_iso(change.since)}"
    return text + (f" — {shown(reason)}" if reason else "")


def message(changes: Sequence[Change], markdown: bool = False) -> Message:
    """The whole notification for ``changes`` (oldest first); ``markdown``: for an app that
    renders Markdown in plain text (:data:`MARKDOWN_SCHEMES`)."""
    return _message(changes, _markdown_clean if markdown else clean)


def _message(changes: Sequence[Change], shown: Callable[[str], str]) -> Message:
    settled = all(
        (isinstance(c, ModuleChange) and c.after is ModuleStatus.OK)
        or (isinstance(c, HostChange) and c.after is HostStatus.OK)
        for c in changes
    )
    return Message(
        # The title names hosts (letters, digits, `. _ : -` only: no link and no mention),
        # and several services show it as plain text (Zulip's topic): cleaned, not escaped.
        title=title(changes),
        body="\n".join(f"- {line(c, shown)}" for c in changes),
        kind="success" if settled else "warning",
    )


def _scheme(url: str) -> str:
    """The scheme of ``url`` ("" without one). Not urlsplit: it raises on a malformed host
    (`json://[::1/`), which is the case to name."""
    return url.partition("://")[0] if "://" in url else ""


def redact(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, safe to print: the host part is taken from
    apprise's privacy form of the URL, which masks tokens that some services carry there
    (``tgram://BOT_TOKEN/...``); user, password, path and query are dropped."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a host urlsplit cannot read: none of it is shown
        return _scheme(url) + "://"
    return f"{parts.scheme}://{host}{port}" if host else f"{parts.scheme}://"


class AppriseChannel:
    """One notification URL: where a message goes, and the outbox key it is kept under."""

    def __init__(self, url: str) -> None:
        """Check that apprise can use ``url``; a :class:`UsageError` says which one cannot,
        without its credentials."""
        import apprise

        _quiet()
        try:
            service = apprise.Apprise.instantiate(
                url.strip(), asset=apprise.AppriseAsset(storage_mode="memory")
            )
        except Exception:  # noqa: BLE001 - a plugin's parser on a malformed URL (`http://[x]`)
            service = None
        scheme = _scheme(url.strip())
        if service is None:
            raise UsageError(
                f"--notify: apprise cannot use the URL given for {clean(scheme or '?')}:// "
                "(see https://github.com/caronc/apprise/wiki for the URL of each service)"
            )
        self.label = clean(redact(service.url(privacy=True)))
        self._shown = _presenter(apprise, service, scheme.lower())
        # The outbox knows a destination by a hash of its URL: the URL itself holds
        # credentials and must not be written to the store.
        self.destination = hashlib.sha256(url.strip().encode()).hexdigest()
        if not re.search(r"[?&]overflow=", url, re.IGNORECASE):  # apprise reads keys so
            # A message longer than the service takes (Discord's 2,000 characters) is split
            # into several, where apprise's default passes it on whole and the service refuses
            # it: its changes stay in the outbox, every later message is longer, and none is
            # ever delivered. A URL's own `overflow=` is kept.
            service.overflow_mode = apprise.OverflowMode.SPLIT
        self._apprise: Apprise = apprise.Apprise()
        self._apprise.add(service)

    def send(self, changes: Sequence[Change]) -> None:
        """Deliver one message for ``changes``; :class:`DeliveryError` when it was not."""
        import apprise

        msg = _message(changes, self._shown)
        try:
            # Plain text: names, images and reasons come from hosts and repositories, and a
            # service that takes HTML (Telegram, e-mail) would otherwise render a link someone
            # wrote there; apprise escapes text for it, and we for the apps that render
            # Markdown in plain text (docs/notify.md, "The message").
            ok = bool(
                self._apprise.notify(
                    body=msg.body,
                    title=msg.title,
                    notify_type=msg.kind,
                    body_format=apprise.NotifyFormat.TEXT,
                )
            )
        except Exception as exc:  # a plugin's own bug must not cost the run its exit code
            raise DeliveryError(
                f"notification to {self.label} failed ({type(exc).__name__})"
            ) from None
        if not ok:
            raise DeliveryError(f"notification to {self.label} failed")


def _presenter(apprise: Any, service: Any, scheme: str) -> Callable[[str], str]:
    """How names and reasons are written for ``service`` so that its readers see them as
    written. apprise renders our plain text in the format the service takes: HTML escaped,
    Markdown escaped too since apprise 2 (before, passed as it is), plain text as it is; and
    some apps render Markdown in plain text all the same (:data:`MARKDOWN_SCHEMES`)."""
    text, markdown = apprise.NotifyFormat.TEXT, apprise.NotifyFormat.MARKDOWN
    resolve = getattr(service, "resolve_format", None)  # newer apprise: per send
    declared = service.notify_format
    target = resolve(text) if resolve else declared if not isinstance(declared, tuple) else text
    if scheme in MARKDOWN_SCHEMES and target != markdown:
        return _markdown_clean
    if target == markdown:
        from apprise.conversion import convert_between

        if convert_between(text, markdown, "[x]") != "[x]":
            return _mention_clean  # apprise escapes the rest itself (apprise 2 and later)
        # An apprise that passes it as it is: backslashes escape CommonMark, which the
        # known apps render; Slack's own markup takes none, so there only mentions break.
        return _markdown_clean if scheme in MARKDOWN_SCHEMES else _mention_clean
    return clean


def _quiet() -> None:
    """Keep apprise's log off stderr: some services log their URL, token included; a failed
    delivery is reported by platformctl in one line of its own."""
    log = logging.getLogger("apprise")
    log.propagate = False
    if not log.handlers:
        log.addHandler(logging.NullHandler())
