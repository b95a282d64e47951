"""A DNS server on loopback for the tests of email checks (sessions_app.email_quality).

A real UDP server built from dnspython's message tools: the code under test sends real queries
over a real socket to it, through the same resolver it uses in production, pointed here with
LEAD_EMAIL_DNS_NAMESERVERS. Nothing here is imported by product code.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import dns.exception
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


@dataclass
class Zone:
    """What the server knows: records by (name, type), and names it never answers for."""

    # ("example.com", "MX") -> ["10 mail.example.com."]; ("example.com", "A") -> ["192.0.2.1"]
    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # Names that exist but may lack the asked type (NOERROR, no answer). Every name with a record
    # exists too; any other name is NXDOMAIN.
    names: set[str] = field(default_factory=set)
    # Queries for these names get no reply at all (a resolver that times out).
    silent: set[str] = field(default_factory=set)

    def add(self, name: str, rdtype: str, *values: str) -> Zone:
        self.records.setdefault((name.lower().rstrip("."), rdtype), []).extend(values)
        return self


class LoopbackDNSServer:
    """`with LoopbackDNSServer(zone) as dns_server:` -> `dns_server.nameserver` is
    "127.0.0.1:PORT"; `dns_server.queries` lists every (name, type) asked, in order."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.queries: list[tuple[str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def nameserver(self) -> str:
        host, port = self._sock.getsockname()
        return f"{host}:{port}"

    def __enter__(self) -> LoopbackDNSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                wire, address = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply = self._answer(dns.message.from_wire(wire))
            except dns.exception.DNSException:
                reply = None  # garbage on the socket is not the tests' subject
            if reply is not None:
                self._sock.sendto(reply.to_wire(), address)

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        name = question.name.to_text().lower().rstrip(".")
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name in self.zone.silent:
            return None
        response = dns.message.make_response(query)
        values = self.zone.records.get((name, rdtype))
        if values:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 300, dns.rdataclass.IN, rdtype, values)
            )
        elif not self._exists(name):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response

    def _exists(self, name: str) -> bool:
        return name in self.zone.names or any(key[0] == name for key in self.zone.records)
