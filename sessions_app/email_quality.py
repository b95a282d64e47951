"""Email beyond syntax: will the address reach someone, and is it the address the visitor meant?

`sessions_app.leads` stays the one place that says what a valid email IS (its syntax); this
module grades an address that passed it, for every channel alike:

- `disposable`: the domain (or a parent of it) is on the maintained list of throwaway mail
  services (the `disposable-email-domains` package).
- `no_mx`: DNS says the domain takes no mail: it does not exist, has a null MX (RFC 7505), or
  has neither MX nor A/AAAA records.
- `unverifiable`: DNS did not answer within LEAD_EMAIL_DNS_TIMEOUT (or failed). Never refused:
  a slow resolver must not cost a lead.
- `role`: a shared mailbox (info@, sales@), deliverable but nobody's own.
- `valid`: none of these.

The lookup (MX, then A, then AAAA) runs under one total budget, LEAD_EMAIL_DNS_TIMEOUT (1.5 s),
and its answer is cached per domain (a day; an unverifiable one 5 minutes), so a busy site
looks each domain up about once a day and a cache outage only costs a lookup (the cache guard
fails open). Callers run the check OUTSIDE any transaction: `widget.services.agent_answer`
(widget and Messenger) before the reply is stored, `sessions_app.ingest` before its atomic
block; `lead_capture` itself only checks what its caller did not.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from disposable_email_domains import blocklist
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext

from leadchat.cache_guard import cache_call
from sessions_app.models import EmailQuality

if TYPE_CHECKING:
    import dns.nameserver
    import dns.resolver

# An unverifiable answer is a resolver's bad moment, not a fact about the domain: retried soon.
UNVERIFIABLE_CACHE_SECONDS = 300
CACHE_KEY_VERSION = 1

# Shared mailboxes: deliverable, but a team's rather than a person's (the local part before any
# "+tag", lower case).
ROLE_LOCAL_PARTS = frozenset(
    {
        "abuse",
        "accounts",
        "admin",
        "administrator",
        "billing",
        "careers",
        "contact",
        "customerservice",
        "enquiries",
        "enquiry",
        "hello",
        "help",
        "helpdesk",
        "hostmaster",
        "hr",
        "info",
        "inquiries",
        "jobs",
        "mail",
        "marketing",
        "media",
        "no-reply",
        "noreply",
        "office",
        "postmaster",
        "press",
        "root",
        "sales",
        "security",
        "service",
        "support",
        "team",
        "webmaster",
    }
)

# The mail providers most visitors use: a domain one or two keystrokes away from one of these
# is probably a typo of it ("gmial.com"). Each is listed so that it is never "corrected" itself.
COMMON_DOMAINS = (
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "yahoo.co.uk",
    "yahoo.fr",
    "yahoo.es",
    "ymail.com",
    "hotmail.com",
    "hotmail.co.uk",
    "hotmail.fr",
    "hotmail.es",
    "outlook.com",
    "outlook.es",
    "outlook.fr",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "mac.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.com",
    "email.com",
    "mail.ru",
    "yandex.ru",
    "zoho.com",
    "fastmail.com",
)
_COMMON = frozenset(COMMON_DOMAINS)
# Top-level domains nobody has, typed for .com / .net / .org.
TLD_TYPOS = {
    "con": "com",
    "cmo": "com",
    "ocm": "com",
    "vom": "com",
    "xom": "com",
    "cpm": "com",
    "comm": "com",
    "coom": "com",
    "nte": "net",
    "ogr": "org",
}


@dataclass(frozen=True)
class EmailCheck:
    email: str
    quality: str  # an EmailQuality value
    # The address the visitor probably meant ("ana@gmail.com" for "ana@gmial.com"), or None.
    suggestion: str | None = None

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]


def email_check(email: str) -> EmailCheck:
    """Grade an address that passed `leads.normalize_email` (DNS within the budget, cached)."""
    local, _, domain = email.rpartition("@")
    domain = domain.lower().rstrip(".")
    suggestion = typo_suggestion(email)
    quality: str
    if is_disposable(domain):
        quality = EmailQuality.DISPOSABLE
    else:
        mail = domain_mail_status(domain)
        if mail == EmailQuality.NO_MX or mail == EmailQuality.UNVERIFIABLE:
            quality = mail
        elif is_role(local):
            quality = EmailQuality.ROLE
        else:
            quality = EmailQuality.VALID
    return EmailCheck(email=email, quality=str(quality), suggestion=suggestion)


def email_refusal(check: EmailCheck, *, refuse_no_mx: bool, refuse_disposable: bool) -> str | None:
    """Why a site that refuses such addresses refuses this one (a sentence), or None."""
    if refuse_disposable and check.quality == EmailQuality.DISPOSABLE:
        # gettext: the visitor reads it in the site's language (widget.i18n.site_texts).
        return gettext(
            "%(domain)s is a disposable email service, and we need an address that will "
            "still work when we reply."
        ) % {"domain": check.domain}
    if refuse_no_mx and check.quality == EmailQuality.NO_MX:
        return gettext("%(domain)s doesn't seem to receive email.") % {"domain": check.domain}
    return None


def is_disposable(domain: str) -> bool:
    """The domain or one of its parents is a throwaway mail service ("x.mailinator.com" too)."""
    labels = domain.lower().split(".")
    return any(".".join(labels[i:]) in blocklist for i in range(len(labels) - 1))


def is_role(local_part: str) -> bool:
    return local_part.lower().split("+", 1)[0] in ROLE_LOCAL_PARTS


def typo_suggestion(email: str) -> str | None:
    """The likely intended address when the domain looks like a slip of a common one."""
    local, _, domain = email.rpartition("@")
    domain = domain.lower()
    if domain in _COMMON:
        return None
    name, _, tld = domain.rpartition(".")
    if tld in TLD_TYPOS and name:
        fixed = f"{name}.{TLD_TYPOS[tld]}"
        return f"{local}@{fixed}"
    allowed = 1 if len(domain) <= 8 else 2
    scored = sorted((_distance(domain, common), common) for common in COMMON_DOMAINS)
    best, candidate = scored[0]
    if best > allowed or (len(scored) > 1 and scored[1][0] == best):
        return None  # too far, or two providers equally close: no guess
    return f"{local}@{candidate}"


def _distance(a: str, b: str) -> int:
    """Optimal string alignment distance: edits, with a swap of neighbours as one ("gmial")."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


# --- DNS ---------------------------------------------------------------------------------------


def domain_mail_status(domain: str) -> str:
    """`valid` (takes mail), `no_mx` or `unverifiable`; `valid` without a lookup when the DNS
    check is off (LEAD_EMAIL_DNS_CHECK)."""
    if not settings.LEAD_EMAIL_DNS_CHECK:
        return str(EmailQuality.VALID)
    key = _cache_key(domain)
    cached = cache_call("email_dns_get", lambda: cache.get(key), None)
    if isinstance(cached, str):
        return cached
    status = _lookup(domain)
    ttl = (
        UNVERIFIABLE_CACHE_SECONDS
        if status == EmailQuality.UNVERIFIABLE
        else settings.LEAD_EMAIL_DNS_CACHE_SECONDS
    )
    cache_call("email_dns_set", lambda: cache.set(key, status, ttl), None)
    return status


def _cache_key(domain: str) -> str:
    digest = hashlib.sha256(domain.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"email-dns:{CACHE_KEY_VERSION}:{digest}"


def _lookup(domain: str) -> str:
    # dnspython is imported here, on the first lookup: it takes a second to import on a busy
    # machine, which every process would otherwise pay at start-up (and the tests, with the
    # check off, never).
    import dns.exception
    import dns.name
    import dns.resolver

    budget = float(settings.LEAD_EMAIL_DNS_TIMEOUT)
    deadline = time.monotonic() + budget
    try:
        resolver = _resolver(budget)
        qname = dns.name.from_text(domain)
    except (dns.exception.DNSException, ValueError, OSError):
        # No resolver configuration, or a name DNS cannot carry: we cannot tell.
        return str(EmailQuality.UNVERIFIABLE)
    for rdtype in ("MX", "A", "AAAA"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return str(EmailQuality.UNVERIFIABLE)
        try:
            answer = resolver.resolve(qname, rdtype, lifetime=remaining, search=False)
        except dns.resolver.NXDOMAIN:
            return str(EmailQuality.NO_MX)  # the domain does not exist
        except dns.resolver.NoAnswer:
            continue  # no record of this type: try the next (RFC 5321's implicit MX)
        except dns.exception.DNSException:
            # Timeout (LifetimeTimeout), every server failing (NoNameservers), a bad answer.
            return str(EmailQuality.UNVERIFIABLE)
        # A null MX ("0 .", RFC 7505) says in so many words: no mail here.
        if rdtype == "MX" and all(record.exchange == dns.name.root for record in answer):
            return str(EmailQuality.NO_MX)
        return str(EmailQuality.VALID)
    return str(EmailQuality.NO_MX)


def _resolver(budget: float) -> dns.resolver.Resolver:
    import dns.resolver

    nameservers = [s.strip() for s in settings.LEAD_EMAIL_DNS_NAMESERVERS if s.strip()]
    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        resolver.nameservers = [_nameserver(entry) for entry in nameservers]
    # One attempt may use the whole budget; `lifetime` (per query, the remaining budget) caps it.
    resolver.timeout = budget
    resolver.lifetime = budget
    resolver.cache = None  # our cache is the Django one, shared by every process
    return resolver


def _nameserver(entry: str) -> dns.nameserver.Nameserver:
    import dns.nameserver

    host, port = entry, 53
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif entry.count(":") == 1:
        host, _, raw_port = entry.partition(":")
        port = int(raw_port)
    return dns.nameserver.Do53Nameserver(host, port)
