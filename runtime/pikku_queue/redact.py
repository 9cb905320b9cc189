"""The one redaction of backend URLs, for everything that prints, logs, reprs or raises one.

A backend URL can carry secrets in three places: the user-info password
(`redis://user:pw@host`), a bare user-info secret (`redis://S3cr3t@host`, which Redis reads as
a password), and query parameters (`?password=…`, SQS's `access_key`/`secret_key`, a
`token`, a presigned `sig`…). `redact_url` masks all three and shows everything else (scheme,
host, port, path, the other parameters), so a message still says which backend it is about.

It parses the text itself instead of calling `urllib.parse` accessors (`.port` raises on a bad
port, `.hostname` trips on some IPv6 forms) and never raises: it runs in error paths, where a
second exception would replace the message with a traceback that holds the URL.
"""

from __future__ import annotations

from urllib.parse import unquote

MASK = "***"

#: A query parameter whose name (lower-cased, `-` read as `_`) contains one of these holds a
#: secret: password, passwd, pwd, access_key, secret, secret_key, token, sig, signature,
#: api_key, auth, credential, X-Amz-Security-Token...
_SECRET_NAME_PARTS = (
    "pass",
    "pwd",
    "secret",
    "token",
    "key",
    "sig",
    "auth",
    "credential",
    "session",
)


def is_secret_parameter(name: str) -> bool:
    """Whether a URL query parameter of this name carries a secret."""
    folded = unquote(name).lower().replace("-", "_")
    return any(part in folded for part in _SECRET_NAME_PARTS)


def _redact_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        name, equals, value = item.partition("=")
        if equals and is_secret_parameter(name):
            item = f"{name}={MASK}"
        elif "@" in value or "%40" in value.lower():  # a URL inside (an endpoint with user-info)
            item = f"{name}={_redact(unquote(value))}"
        parts.append(item)
    return "&".join(parts)


def _redact(text: str) -> str:
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "", text
    rest, hash_sep, fragment = rest.partition("#")
    rest, query_sep, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        # `user:pw@` keeps the user name; a bare `secret@` (no colon) is all secret.
        netloc = (f"{user}:{MASK}" if colon else MASK) + "@" + host
    out = (scheme + sep if sep else "") + netloc + slash + path
    if query_sep:
        out += "?" + _redact_query(query)
    if hash_sep:
        out += "#" + (MASK if fragment else "")
    return out


def _secrets(text: str) -> list[str]:
    """The secret values a URL carries (user-info password or bare secret, secret params)."""
    found: list[str] = []
    _, sep, rest = text.partition("://")
    rest = rest if sep else text
    rest = rest.partition("#")[0]
    rest, _, query = rest.partition("?")
    userinfo, at, _ = rest.partition("/")[0].rpartition("@")
    if at:
        user, colon, password = userinfo.partition(":")
        found.append(password if colon else user)
    for item in query.split("&"):
        name, equals, value = item.partition("=")
        if equals and is_secret_parameter(name):
            found.append(value)
            found.append(unquote(value))
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
