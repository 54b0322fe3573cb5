"""Message builders for the INVITE dialog usage (RFC 3261 §9, §13, §15), free of I/O.

:mod:`voipbin.sip.invite_client`, :mod:`voipbin.sip.invite_server` and :mod:`voipbin.sip.invite_dialog`
use these to build CANCEL (§9.1), the ACK for a 2xx (§13.2.2.4), the 2xx
itself (§13.3.1.4), and to work out where an in-dialog request goes (§12.2.1.1, §8.1.2, no DNS).
"""

from __future__ import annotations

import ipaddress

from voipbin.sip.dialog import Dialog
from voipbin.sip.errors import SipParseError
from voipbin.sip.headers import Address
from voipbin.sip.message import Headers, Request, Response, make_response
from voipbin.sip.transport import Addr
from voipbin.sip.uri import SipUri

SDP = "application/sdp"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO"
CREDENTIAL_HEADERS = ("Authorization", "Proxy-Authorization")


def sdp_of(message: Request | Response) -> bytes | None:
    """The body when it is SDP (or untyped and non-empty), else None. Multipart bodies are not
    unpacked here (the call layer never sends them)."""
    if not message.body:
        return None
    content_type = (message.content_type or SDP).split(";")[0].strip().lower()
    return message.body if content_type == SDP else None


def contact_for(user: str | None, host: str, port: int, transport: str) -> str:
    """Our Contact (RFC 3261 §8.1.1.8): the advertised address, ``transport=tcp`` for TCP."""
    userinfo = f"{user}@" if user else ""
    suffix = ";transport=tcp" if transport.upper() == "TCP" else ""
    return f"<sip:{userinfo}{host}:{port}{suffix}>"


def uri_address(uri: SipUri) -> Addr | None:
    """(host, port) of a URI whose host is an IP literal, else None (no RFC 3263 DNS here)."""
    host = uri.host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host, uri.effective_port


def next_hop(dialog: Dialog) -> Addr | None:
    """Where an in-dialog request goes (§12.2.1.1, §8.1.2): the first Route when there is a route
    set, else the remote target. None when that host is not an IP literal."""
    if dialog.route_set:
        try:
            first = Address.parse(dialog.route_set[0])
        except (SipParseError, ValueError):
            return None
        return uri_address(first.uri) if first.uri is not None else None
    return uri_address(dialog.remote_target)


def build_cancel(invite: Request) -> Request:
    """CANCEL for a pending INVITE (§9.1): same Request-URI, Call-ID, From, To (no tag added) and
    CSeq number, the INVITE's top Via (same branch) and its Route headers."""
    headers = Headers()
    headers.add("Via", invite.headers.get("Via") or "")
    headers.add("Max-Forwards", "70")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    for name in ("From", "To", "Call-ID"):
        headers.add(name, invite.headers.get(name) or "")
    headers.add("CSeq", f"{invite.cseq.seq} CANCEL")
    return Request(headers, method="CANCEL", uri=invite.uri)


def build_2xx_ack(dialog: Dialog, invite: Request, *, via_host: str, via_port: int, transport: str,
                  body: bytes = b"") -> Request:
    """The ACK for a 2xx (§13.2.2.4): built in the dialog, CSeq number of the INVITE, a new branch,
    the INVITE's credentials; ``body`` is the SDP answer of a delayed offer."""
    ack = dialog.create_request("ACK", via_host=via_host, via_port=via_port, transport=transport,
                                cseq=invite.cseq.seq, body=body,
                                content_type=SDP if body else None)
    for name in CREDENTIAL_HEADERS:
        for value in invite.headers.get_all(name):
            ack.headers.add(name, value)
    return ack


def build_2xx(request: Request, *, to_tag: str, contact: str, sdp: bytes | None,
              server: str) -> Response:
    """200 OK to an INVITE (§13.3.1.4): our To tag, Contact, Allow, and the SDP body if any."""
    response = make_response(request, 200, to_tag=to_tag)
    response.headers.add("Contact", contact)
    response.headers.add("Allow", ALLOW)
    response.headers.add("Server", server)
    if sdp:
        response.headers.add("Content-Type", SDP)
        response.body = sdp
    return response


def dialog_without_contact(invite: Request, response: Response) -> Dialog:
    """A UAC dialog for a 2xx that lacks a Contact (broken peer): the Request-URI is the target,
    so that it can still be ACKed and BYEd."""
    local = invite.from_
    remote = response.to
    return Dialog(call_id=invite.call_id, local_tag=local.tag or "", remote_tag=remote.tag or "",
                  local_uri=Address(local.uri, local.display_name),
                  remote_uri=Address(remote.uri, remote.display_name), remote_target=invite.uri,
                  route_set=list(reversed(response.headers.get_all("Record-Route"))),
                  local_seq=invite.cseq.seq)
