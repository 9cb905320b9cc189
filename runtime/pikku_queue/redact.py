"""The one redaction of backend URLs, for everything that prints, logs, reprs or raises one.

A backend URL can carry secrets in three places: the user-info password
(`redis://user:pw@host`), a bare user-info secret (`redis://S3cr3t@host`, which Redis reads as
a password), and query parameters (`?password=…`, `?pw=…`, SQS's `access_key`, a `token`, a
presigned `sig`…). `redact_url` masks all three and shows everything else (scheme, host,
port, path, the harmless parameters), so a message still says which backend it is about.

Query parameters are masked by an allow-list, not a list of suspicious names: no list of names
can foresee `?pw=` or `?k=`, so every value is masked unless its parameter is one our URLs
document (`prefix`, `region`, `remove_on_complete`, …, `HARMLESS_PARAMETERS`) or one redis-py
reads as a connection setting (`db`, `socket_timeout`, …), and even then a value holding
whitespace or a control character is masked. Text that is not a URL at all (no `scheme://`,
say `u:pw@host` given where a URL was expected) is masked whole: how it would have been
meant cannot be known.

It parses the text itself instead of calling `urllib.parse` accessors (`.port` raises on a bad
port, `.hostname` trips on some IPv6 forms) and never raises: it runs in error paths, where a
second exception would replace the message with a traceback that holds the URL.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"

#: Query parameters whose values are shown: the ones our backend URLs document (SQLite's and
#: Redis's retention, Redis's key prefix, the `sqs://` settings, whose `queue.<name>` entries
#: are matched by prefix) and the connection settings redis-py reads from a URL. A parameter
#: missing here is only masked when it is shown, never refused; every adapter's own list is
#: checked against this one by the tests.
HARMLESS_PARAMETERS = frozenset(
    {
        # sqlite:// and redis:// retention, redis:// key prefix
        "remove_on_complete",
        "remove_on_fail",
        "prefix",
        # sqs://
        "region",
        "endpoint_url",
        "wait_time_seconds",
        "group_key",
        "create_queues",
        # redis-py's URL settings
        "db",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_read_size",
        "socket_keepalive",
        "retry_on_timeout",
        "retry_on_error",
        "max_connections",
        "health_check_interval",
        "ssl_check_hostname",
        "ssl_cert_reqs",
        "ssl_ca_certs",  # paths to certificate and key files, not their contents
        "ssl_ca_path",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_validate_ocsp",
        "ssl_validate_ocsp_stapled",
        "ssl_include_verify_flags",
        "ssl_exclude_verify_flags",
        "ssl_min_version",
        "timeout",
        "protocol",
        "client_name",
        "legacy_responses",
    }
)
#: Parameters named `<prefix><anything>` whose values are shown (an `sqs://` queue's URL).
_HARMLESS_PREFIXES = ("queue.",)
#: A URL: a scheme, then `://`.
_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
#: What a shown value may hold: no whitespace, no control character.
_PLAIN_VALUE_RE = re.compile(r"[^\s\x00-\x1f\x7f]*")


def is_secret_parameter(name: str) -> bool:
    """Whether the value of a URL query parameter of this name is masked: every parameter
    but the harmless ones (`HARMLESS_PARAMETERS`)."""
    folded = unquote(name).lower().replace("-", "_")
    return folded not in HARMLESS_PARAMETERS and not folded.startswith(_HARMLESS_PREFIXES)


def _redact_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        name, equals, value = item.partition("=")
        if not equals:  # a bare `?S3cr3t`: nothing says what it is
            item = item if not item or not is_secret_parameter(name) else MASK
        elif is_secret_parameter(name) or not _PLAIN_VALUE_RE.fullmatch(unquote(value)):
            item = f"{name}={MASK}"
        elif "@" in unquote(value) or "://" in unquote(value):
            # a URL inside (an endpoint, a queue's URL): its own user-info and query masked
            item = f"{name}={_redact(unquote(value))}"
        parts.append(item)
    return "&".join(parts)


def _redact(text: str) -> str:
    if text and not _URL_RE.match(text):
        return MASK  # not a URL: which part is the secret cannot be told
    scheme, sep, rest = text.partition("://")
    rest, hash_sep, fragment = rest.partition("#")
    rest, query_sep, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        # `user:pw@` keeps the user name; a bare `secret@` (no colon) is all secret.
        netloc = (f"{user}:{MASK}" if colon else MASK) + "@" + host
    out = scheme + sep + netloc + slash + path
    if query_sep:
        out += "?" + _redact_query(query)
    if hash_sep:
        out += "#" + (MASK if fragment else "")
    return out


def _secrets(text: str) -> list[str]:
    """The secret values a URL carries (user-info password or bare secret, masked parameters;
    all of it when it is not a URL), to find them again inside a library's message."""
    if not _URL_RE.match(text):  # any piece of it may be the secret
        pieces = [text, unquote(text), *re.split(r"[:@/?&=#\s]+", text)]
        return sorted({s for s in pieces if len(s) >= 3}, key=len, reverse=True)
    found: list[str] = []
    rest = text.partition("://")[2]
    rest = rest.partition("#")[0]
    rest, _, query = rest.partition("?")
    userinfo, at, _ = rest.partition("/")[0].rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        found.append(password if colon else user)
    for item in query.split("&"):
        name, equals, value = item.partition("=")
        if not equals and is_secret_parameter(name):
            found += [name, unquote(name)]
        elif equals and (
            is_secret_parameter(name) or not _PLAIN_VALUE_RE.fullmatch(unquote(value))
        ):
            found += [value, unquote(value)]
        elif equals and ("@" in unquote(value) or "://" in unquote(value)):
            found += _secrets(unquote(value))  # a URL inside: its own secrets
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def redact_text(text: str, url: object) -> str:
    """`text` (an error message, say from a library that echoed its input) with the URL and
    every secret it carries masked; never raises."""
    try:
        raw = str(url) if url is not None else ""
        out = str(text).replace(raw, redact_url(raw)) if raw else str(text)
        for secret in _secrets(raw):
            out = out.replace(secret, MASK)
        return out
    except Exception:
        return "<a message about a backend URL that cannot be shown>"


def redact_url(url: object) -> str:
    """`url` with every secret it may carry replaced by `***`; never raises."""
    try:
        return _redact(str(url))
    except Exception:  # str() of an odd object: still never the reason a message is lost
        return "<a backend URL that cannot be shown>"
