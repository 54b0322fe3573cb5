"""Dialogs (RFC 3261 §12): state shared by the two UAs of an INVITE-created session.

A :class:`Dialog` is created by the UAC from a 2xx/101-199-with-tag response
(:meth:`Dialog.from_uac`, §12.1.2) or by the UAS from the request it answers (:meth:`Dialog.from_uas`,
§12.1.1). It builds in-dialog requests (:meth:`Dialog.create_request`, §12.2.1.1: remote target,
route set with loose routing, incrementing local CSeq) and checks incoming ones
(:meth:`Dialog.accept_request`, §12.2.2: CSeq ordering, target refresh). It does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voipbin.sip.errors import SipParseError
from voipbin.sip.headers import Address
from voipbin.sip.message import Headers, Request, Response, new_branch
from voipbin.sip.uri import SipUri

TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


@dataclass(frozen=True)
class DialogId:
    """Call-ID + local tag + remote tag (§12)."""

    call_id: str
    local_tag: str
    remote_tag: str


@dataclass
class Dialog:
    """Dialog state (§12.1). ``early`` until a 2xx confirms it."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: Address
    remote_uri: Address
    remote_target: SipUri
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    secure: bool = False
    early: bool = False

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """UAC dialog from the request and a 1xx-with-To-tag or 2xx response (§12.1.2).
        Route set: Record-Route of the response, reversed. Raises SipParseError when the response
        has no To tag or no Contact."""
        remote = response.to
        if remote.tag is None:
            raise SipParseError("Missing To Tag")
        contacts = response.contacts
        if not contacts or contacts[0].uri is None:
            raise SipParseError("Missing Contact")
        local = request.from_
        return cls(
            call_id=request.call_id, local_tag=local.tag or "", remote_tag=remote.tag,
            local_uri=_bare(local), remote_uri=_bare(remote), remote_target=contacts[0].uri,
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_seq=request.cseq.seq, remote_seq=None, secure=request.uri.scheme == "sips",
            early=response.status < 200,
        )

    @classmethod
    def from_uas(cls, request: Request, local_tag: str) -> Dialog:
        """UAS dialog from the dialog-creating request and the To tag of our response (§12.1.1).
        Route set: Record-Route of the request, in order. Raises SipParseError without Contact."""
        contacts = request.contacts
        if not contacts or contacts[0].uri is None:
            raise SipParseError("Missing Contact")
        remote = request.from_
        return cls(
            call_id=request.call_id, local_tag=local_tag, remote_tag=remote.tag or "",
            local_uri=_bare(request.to), remote_uri=_bare(remote), remote_target=contacts[0].uri,
            route_set=list(request.headers.get_all("Record-Route")), local_seq=0,
            remote_seq=request.cseq.seq, secure=request.uri.scheme == "sips",
        )

    def confirm(self, response: Response) -> None:
        """A 2xx arrived for an early dialog: confirm it and take its Contact and route set."""
        self.early = False
        contacts = response.contacts
        if contacts and contacts[0].uri is not None:
            self.remote_target = contacts[0].uri
        self.route_set = list(reversed(response.headers.get_all("Record-Route")))

    def create_request(self, method: str, *, via_host: str, via_port: int, transport: str = "UDP",
                       contact: str | None = None, body: bytes = b"",
                       content_type: str | None = None, cseq: int | None = None) -> Request:
        """An in-dialog request (§12.2.1.1). Loose routing: the Request-URI is the remote target
        and the route set becomes Route headers; a strict first route (no ``lr``) becomes the
        Request-URI with the remote target appended as last Route. ACK and CANCEL reuse the
        given ``cseq``; other methods increment the local CSeq."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        uri = self.remote_target
        routes = list(self.route_set)
        if routes:
            first = Address.parse(routes[0])
            if first.uri is not None and "lr" not in first.uri.params:
                uri = first.uri
                routes = routes[1:] + [f"<{self.remote_target}>"]
        local = Address(self.local_uri.uri, self.local_uri.display_name, {"tag": self.local_tag})
        remote = Address(self.remote_uri.uri, self.remote_uri.display_name, {"tag": self.remote_tag})
        h = Headers()
        h.add("Via", f"SIP/2.0/{transport} {via_host}:{via_port};branch={new_branch()};rport")
        h.add("Max-Forwards", "70")
        for route in routes:
            h.add("Route", route)
        h.add("From", str(local))
        h.add("To", str(remote))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        if contact is not None:
            h.add("Contact", contact)
        if content_type is not None:
            h.add("Content-Type", content_type)
        return Request(h, body, method=method, uri=uri)

    def accept_request(self, request: Request) -> tuple[int, str] | None:
        """Check an in-dialog request (§12.2.2). Returns ``(500, reason)`` for an out-of-order
        CSeq, else None after updating remote CSeq and, for target-refresh requests, the remote
        target."""
        seq = request.cseq.seq
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_seq is not None and seq <= self.remote_seq:
                return 500, "CSeq Out Of Order"
            self.remote_seq = seq
        if request.method in TARGET_REFRESH_METHODS:
            contacts = request.contacts
            if contacts and contacts[0].uri is not None:
                self.remote_target = contacts[0].uri
        return None

    def matches(self, message: Request | Response, *, incoming: bool = True) -> bool:
        """True when ``message`` belongs to this dialog (Call-ID and both tags)."""
        try:
            if message.call_id != self.call_id:
                return False
            from_tag, to_tag = message.from_.tag, message.to.tag
        except SipParseError:
            return False
        if isinstance(message, Request) and incoming:
            return from_tag == self.remote_tag and to_tag == self.local_tag
        return from_tag == self.local_tag and to_tag == self.remote_tag


def dialog_id_for(message: Request | Response, *, incoming_request: bool) -> DialogId:
    """The :class:`DialogId` a message belongs to, seen from our side (§12)."""
    from_tag, to_tag = message.from_.tag or "", message.to.tag or ""
    if incoming_request:
        return DialogId(message.call_id, to_tag, from_tag)
    return DialogId(message.call_id, from_tag, to_tag)


def _bare(address: Address) -> Address:
    return Address(address.uri, address.display_name, {})
