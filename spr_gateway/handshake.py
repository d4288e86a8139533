"""The checks of an OCPP-J opening handshake that need no network.

Each check either returns what it read or raises ``HandshakeRefused`` with the
HTTP status and the short, non-revealing body to answer with.
"""

import binascii
from base64 import b64decode
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from urllib.parse import unquote, urlsplit

from bus.contract import ConnectDecision

# OCPP 2.0.1 caps the identity at 48 characters; 1.6 chargers fit in it too.
MAX_CHARGER_ID = 48

# ConnectDecision.reason values that mean "bad credentials".
BAD_CREDENTIALS = frozenset({"password", "unauthorized", "credentials"})

# The connection proves a lower OCPP security profile than the charger needs.
SECURITY_PROFILE = "security_profile"

BASIC_CHALLENGE = 'Basic realm="moovolt", charset="UTF-8"'

# (status, body, challenge) of a refused ConnectDecision by its reason; any
# other reason is answered as an unknown charger. A connection below the
# charger's profile is forbidden, not challenged: no password can raise it.
UNAUTHORIZED = (HTTPStatus.UNAUTHORIZED, "Unauthorized\n", True)
REFUSALS: dict[str, tuple[HTTPStatus, str, bool]] = {
    **dict.fromkeys(BAD_CREDENTIALS, UNAUTHORIZED),
    SECURITY_PROFILE: (HTTPStatus.FORBIDDEN, "Forbidden\n", False),
}
UNKNOWN = (HTTPStatus.NOT_FOUND, "Not Found\n", False)


class HandshakeRefused(Exception):
    """Refuse the WebSocket handshake with an HTTP response.

    Attributes:
        status: the HTTP status.
        body: a short text for the response body.
        challenge: whether to ask for HTTP Basic credentials.
    """

    def __init__(self, status: HTTPStatus, body: str, *, challenge: bool = False):
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.challenge = challenge


def charger_id_from_path(path: str, prefix: str) -> str:
    """Return the charge point id: the last segment of a path under ``prefix``.

    Args:
        path: the request target, query string included.
        prefix: the gateway's path prefix, e.g. ``/ocpp/``.

    Raises:
        HandshakeRefused: 404 outside the prefix or without an id, 400 for an
            id that is too long or holds control characters.
    """
    try:
        route = urlsplit(path).path
    except ValueError:  # e.g. an unbalanced "[" where a host would be
        raise HandshakeRefused(HTTPStatus.BAD_REQUEST, "Bad Request\n") from None
    base = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
    if not route.startswith(base):
        raise HandshakeRefused(HTTPStatus.NOT_FOUND, "Not Found\n")
    try:
        charger_id = unquote(route[len(base) :].rsplit("/", 1)[-1], errors="strict")
    except UnicodeDecodeError:
        raise HandshakeRefused(
            HTTPStatus.BAD_REQUEST, "Invalid charge point id\n"
        ) from None
    if not charger_id:
        raise HandshakeRefused(HTTPStatus.NOT_FOUND, "Not Found\n")
    if len(charger_id) > MAX_CHARGER_ID or not charger_id.isprintable():
        raise HandshakeRefused(HTTPStatus.BAD_REQUEST, "Invalid charge point id\n")
    return charger_id


def choose_subprotocol(offered: Iterable[str], supported: Sequence[str]) -> str:
    """Pick the first of ``supported`` that the client offers.

    Args:
        offered: the ``Sec-WebSocket-Protocol`` header values.
        supported: the gateway's subprotocols, most preferred first.

    Raises:
        HandshakeRefused: 400 when none is offered or none matches.
    """
    names = {name.strip() for value in offered for name in value.split(",")}
    for subprotocol in supported:
        if subprotocol in names:
            return subprotocol
    expected = ", ".join(supported)
    raise HandshakeRefused(
        HTTPStatus.BAD_REQUEST, f"Unsupported subprotocol; expected {expected}\n"
    )


def basic_auth_password(headers: Sequence[str], charger_id: str) -> str | None:
    """Return the HTTP Basic password, or ``None`` when there is no header.

    OCPP security profile 1 and 2 use the charge point id as the user name,
    so credentials for another id are refused here, before the SG is asked.

    Args:
        headers: the ``Authorization`` header values.
        charger_id: the charge point id from the URL.

    Raises:
        HandshakeRefused: 401 for malformed, non-Basic or mismatched credentials.
    """
    if not headers:
        return None
    unauthorized = HandshakeRefused(
        HTTPStatus.UNAUTHORIZED, "Unauthorized\n", challenge=True
    )
    if len(headers) > 1:
        raise unauthorized
    scheme, _, token = headers[0].strip().partition(" ")
    if scheme.lower() != "basic":
        raise unauthorized
    try:
        user, colon, password = (
            b64decode(token.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized from None
    if not colon or user != charger_id:
        raise unauthorized
    return password


def refusal(decision: ConnectDecision) -> HandshakeRefused:
    """Return the HTTP refusal for a ``ConnectDecision`` that is not accepted.

    Bad credentials get 401 with a Basic challenge, a connection below the
    charger's security profile 403, any other reason 404.
    """
    status, body, challenge = REFUSALS.get(decision.reason, UNKNOWN)
    return HandshakeRefused(status, body, challenge=challenge)
