"""SIP signalling core (RFC 3261) on asyncio: parser, transports, transactions, dialogs,
digest authentication and a registrar.

Layering (each layer unaware of the one above):
``parser``/``message`` -> ``transport`` -> ``transaction_fsm``/``transaction`` -> ``dialog`` ->
``stack`` (thin UA core; the ``registrar`` attached by ``stack.route("REGISTER", ...)``) -> the
INVITE dialog usage: ``invite_dialog`` (both sides), ``invite_client`` (UAC), ``invite_server``
(UAS), dispatched by ``ua.UserAgent``. This package knows nothing of customers, HTTP or a database;
the application plugs in through :class:`~voipbin.sip.location.CredentialStore`,
:class:`~voipbin.sip.location.LocationService` and the registrar's ``on_binding_change`` hook.
"""

from voipbin.sip.errors import SipError, SipParseError, TransactionTimeout, TransportError
from voipbin.sip.message import Request, Response, make_response
from voipbin.sip.parser import parse_message
from voipbin.sip.uri import SipUri, parse_uri

__all__ = [
    "Request",
    "Response",
    "SipError",
    "SipParseError",
    "SipUri",
    "TransactionTimeout",
    "TransportError",
    "make_response",
    "parse_message",
    "parse_uri",
]
