"""Rule-based bounce classification: SMTP reply code + enhanced status + diagnostic text -> reason.

The rules are data, in the spirit of KumoMTA's bounce classifier: an ordered table of text
patterns (first match wins), then a table of enhanced status codes (most specific first), then
the reply code class. Reason names are Sisimai's (libsisimai.org/en/reason).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from postwise.outbound.bounce_engines import ADDRESS

# Reasons whose bounces are permanent for the address (Sisimai's hard bounces); every other
# reason is soft: the address may work later, or the failure is about the message or the sender.
HARD_REASONS = frozenset({"userunknown", "hostunknown", "hasmoved", "notaccept"})

REASONS = (
    "authfailure",
    "badreputation",
    "blocked",
    "contenterror",
    "delivered",
    "exceedlimit",
    "expired",
    "failedstarttls",
    "feedback",
    "filtered",
    "hasmoved",
    "hostunknown",
    "mailboxfull",
    "mailererror",
    "mesgtoobig",
    "networkerror",
    "norelaying",
    "notaccept",
    "notcompliantrfc",
    "onhold",
    "policyviolation",
    "rejected",
    "requireptr",
    "securityerror",
    "spamdetected",
    "speeding",
    "suspend",
    "syntaxerror",
    "systemerror",
    "systemfull",
    "toomanyconn",
    "undefined",
    "userunknown",
    "vacation",
    "virusdetected",
)

# (reason, regex over the lower-cased diagnostic text). Ordered: specific before general.
TEXT_RULES: tuple[tuple[str, str], ...] = (
    (
        "rejected",
        r"domain of sender|sender address .*(does not exist|rejected)|from: domain is invalid|"
        r"purported responsible address|send mail as",
    ),
    # an address (the sender's or the recipient's) on a blocklist: not the sending host
    ("rejected", r"address (that )?(has been|is) (blacklisted|blocklisted)"),
    # Gmail's policy refusal of a message it will not accept ("552-5.7.0 This message was
    # blocked because its content presents a potential security issue")
    ("policyviolation", r"blocked because its content presents a potential"),
    (
        "blocked",
        r"invalid ip for sending|messages from [\d.]+ weren.t sent|aup#cdrbl|\(bl\)|"
        r"service refuse",
    ),
    ("hostunknown", r"domain is not reachable|host or domain name not found|host name lookup fail"),
    # "<host name> does not exist" names the domain, not the mailbox
    ("hostunknown", r"(?<![\w.@<-])[a-z0-9-]+(\.[a-z0-9-]+)+\.?:? (does not|doesn.t) exist"),
    # an RFC 5321 hop count / loop refusal, before the boilerplate around it is read
    ("networkerror", r"hop count exceeded|too many hops|mail loop|loop detected|routing loop"),
    # a URI blocklist judges the message's links (content), not the sending host
    ("spamdetected", r"\buribl\b|\bsurbl\b|blacklisted (url|uri|link)"),
    # the recipient's mailbox exceeding a size or message-count limit is a full mailbox
    ("mailboxfull", r"mailbox (has )?exceed|mailbox exceeds"),
    # headers over the size or count limit are a content problem (Sendmail), not a big message
    ("contenterror", r"headers? too (large|long)|too many headers"),
    # RFC 3207: the receiving side offered no STARTTLS, or the TLS handshake failed
    ("failedstarttls", r"(does not|doesn.t) support (starttls|tls)|starttls (failed|is required)"),
    ("networkerror", r"name service error|no route to host"),
    # InterScan MSS names the recipient it could not deliver to and asks to check the address
    (
        "userunknown",
        r"not listed in public name|no valid recipients|"
        r"unable to deliver message to .{0,80}and other recipients in the same domain",
    ),
    (
        "notcompliantrfc",
        r"multiple (\S+ )?addresses in from|not rfc ?\d+ compliant|duplicate header",
    ),
    (
        "norelaying",
        r"relay(ing)? (denied|not permitted|access denied|not allowed)|no relaying|"
        r"not permitted to relay|unable to relay|relaying denied|we do not relay|"
        # Amazon SES refuses to send for an identity it has not verified (as Sisimai reads it)
        r"email address is not verified",
    ),
    ("toomanyconn", r"frequency limit|too many recipients"),
    ("systemfull", r"insufficient disk space|disk (is )?full"),
    ("exceedlimit", r"recipsizelimit|length exceeds limit|exceeds fixed maximum message size"),
    (
        "notaccept",
        r"null mx|doesn.t receive email|no mx (record )?found|does not accept mail|"
        r"indicated no smtp service|couldn.t find a mail exchanger",
    ),
    (
        "securityerror",
        r"authentication required|authrequired|unauthenticated senders|"
        r"authentication is required|turn on smtp authentication",
    ),
    ("virusdetected", r"virus|malware|infected|harmful (attachment|content)"),
    (
        "requireptr",
        r"reverse (dns|lookup|hostname)|\bptr\b|no rdns|rdns|"
        r"cannot find your hostname|unverifi?ab?le sending ip|unverifyable sending ip|"
        r"client host .* (name|hostname) lookup|resolve your address|ip name lookup failed|"
        r"mismatches client ip",
    ),
    (
        "authfailure",
        r"\bspf\b|\bdkim\b|\bdmarc\b|sender policy framework|not authorized to send|"
        r"domain authentication|authentication information|unauthenticated email",
    ),
    ("badreputation", r"reputation|low reputation|user complaints"),
    (
        "blocked",
        r"blacklist|blocklist|black list|block list|\brbl\b|spamhaus|spamcop|dnsbl|"
        r"barracuda|listed (at|on|in)|ip .*(blocked|banned)|connection refused|"
        r"access denied|refused to talk|not allowed to connect|your (ip|host|network) |client host",
    ),
    (
        "spamdetected",
        r"\bspam\b|spam (detected|content|message)|looks like spam|junk mail|unsolicited|"
        r"bulk mail|message content rejected",
    ),
    ("toomanyconn", r"too many (connections|concurrent|simultaneous|sessions)|connection limit"),
    (
        "speeding",
        r"rate limit|too many (messages|emails|mails)|try again later .*rate|"
        r"sending rate|exceeded .*rate|throttl|(receiving|sending) mail at a rate",
    ),
    (
        "mesgtoobig",
        r"(message|mail) (size|is too (big|large))|too (big|large)|size limit|"
        r"exceeds .*size|message length exceeds",
    ),
    ("exceedlimit", r"exceed(s|ed)? .*limit|limit exceeded"),
    (
        "mailboxfull",
        r"mailbox (is )?full|over ?quota|quota (exceeded|full)|insufficient .*storage|"
        r"mailbox .*(size|storage)|disk quota|exceeded storage|mailfolder is full|too much mail|"
        r"full mailbox|user is over|space (not enough|not available)|mailbox has exceeded",
    ),
    (
        "suspend",
        r"suspend|disabled|deactivated|inactive|account .*(closed|locked|expired)|"
        r"temporar(il)?y locked|is frozen|"
        r"mailbox .*(disabled|inactive)|not active|has been frozen",
    ),
    ("hasmoved", r"has (been )?moved|no longer (valid|with)|changed (his|her|their) address"),
    (
        "hostunknown",
        r"host (or domain name )?not found|unknown host|domain (does not|doesn.t) "
        r"exist|no such domain|unrouteable|unroutable|name or service not known|"
        r"domain not found|host unknown|unknown domain|nxdomain|no mx|dns (error|lookup)",
    ),
    (
        "userunknown",
        r"user unknown|unknown user|no such (user|mailbox|recipient|address|person)|"
        r"(user|mailbox|recipient|address|account) .*(not found|does not exist|doesn.t exist|"
        r"unknown|unavailable|not exist|invalid)|invalid (recipient|mailbox|user|address)|"
        r"unknown (recipient|mailbox|address|local)|not a valid (user|mailbox|recipient)|"
        r"doesn.t have an? .* account|user not|"
        r"mailbox not found|no mailbox|unrouteable address|"
        r"rejected: user|addressee unknown|is not a known user|undeliverable address",
    ),
    (
        "norelaying",
        r"relay(ing)? (denied|not permitted|access denied|not allowed)|"
        r"not permitted to relay|unable to relay|relaying denied|we do not relay",
    ),
    ("notaccept", r"does not accept mail|null mx|not accept(ing)? (any )?mail|no mail service"),
    ("securityerror", r"\btls\b|\bssl\b|certificate|encryption required|security (error|policy)"),
    (
        "syntaxerror",
        r"syntax error|command unrecognized|unrecognized command|bad sequence|"
        r"not implemented",
    ),
    (
        "notcompliantrfc",
        r"rfc ?(5322|2822|822|5321)|not (rfc|compliant)|duplicate header|"
        r"malformed|header .*(invalid|missing)|multiple .* headers",
    ),
    ("policyviolation", r"policy|prohibited|not allowed|violat"),
    ("contenterror", r"content|attachment|mime"),
    (
        "rejected",
        r"sender (address )?(rejected|denied|refused|blocked|verify failed)|"
        r"domain of sender|sender domain|envelope sender|mail from|your address|"
        r"sender .*(not|invalid)|return path",
    ),
    ("filtered", r"filter|refused by recipient|recipient .*refus|rejected by recipient"),
    (
        "expired",
        r"expired|timed? ?out|retry (time|timeout)|too long in queue|"
        r"could not be delivered for|giving up|delivery time expired|queue|delayed|"
        r"all hosts have been failing|retry time not reached|still undelivered after",
    ),
    ("systemfull", r"system (is )?full|insufficient system storage"),
    (
        "networkerror",
        r"network|connection (reset|lost|dropped|closed)|mail loop|"
        r"too many hops|loop detected|route|routing loop|hop count",
    ),
    (
        "systemerror",
        r"service (currently )?unavailable|transaction failed|system (error|config)|"
        r"internal (server )?error|server error|"
        r"temporary failure|local error|configuration error",
    ),
    ("mailererror", r"mailer|command (died|failed)|program|pipe to"),
    ("userunknown", r"recipient rejected|address rejected"),
)
# Wording that names the failure whatever the status says, checked before everything else: a
# local delivery program that reports its own failure (procmail, a pipe that died) quotes the
# program's complaint ("No such user") with whatever status it chose.
DECISIVE_TEXT_RULES: tuple[tuple[str, str], ...] = (
    ("mailererror", r"procmail: |command died with status"),
)
# Text rules too generic to overrule an address or mailbox status (x.1.x, x.2.x).
WEAK_TEXT_REASONS = frozenset(
    {"mailererror", "systemerror", "networkerror", "contenterror", "expired", "policyviolation"}
)

# Text reasons that give way to one specific status: "inactive" / "disabled" wording with an
# x.1.1 status (RFC 3463: the mailbox does not exist) is the server's explanation of a
# missing mailbox, and Sisimai reads the status.
STATUS_OVER_TEXT: dict[str, frozenset[str]] = {"suspend": frozenset({".1.1"})}

# Enhanced status codes (RFC 3463) -> reason, most specific first. "x." matches 4 and 5.
STATUS_RULES: tuple[tuple[str, str], ...] = (
    ("x.1.1", "userunknown"),
    ("x.1.2", "hostunknown"),
    ("x.1.3", "userunknown"),
    ("x.1.4", "userunknown"),
    ("x.1.6", "hasmoved"),
    ("x.1.7", "rejected"),
    ("x.1.8", "rejected"),
    ("x.1.10", "notaccept"),
    ("x.2.1", "suspend"),
    ("x.2.2", "mailboxfull"),
    ("x.2.3", "mesgtoobig"),
    ("x.2.4", "mailererror"),
    ("x.3.0", "systemerror"),
    ("x.3.1", "systemfull"),
    ("x.3.2", "systemerror"),
    ("x.3.3", "systemerror"),
    ("x.3.4", "mesgtoobig"),
    ("x.3.5", "systemerror"),
    ("x.4.1", "networkerror"),
    ("x.4.2", "networkerror"),
    ("x.4.3", "networkerror"),
    ("x.4.4", "hostunknown"),
    ("x.4.5", "networkerror"),
    ("x.4.6", "networkerror"),
    ("x.4.7", "expired"),
    ("x.5.", "syntaxerror"),
    ("x.6.", "contenterror"),
    ("x.7.0", "securityerror"),
    ("x.7.1", "rejected"),
    ("x.7.7", "policyviolation"),
    ("x.7.13", "suspend"),
    ("x.7.23", "authfailure"),
    ("x.7.24", "authfailure"),
    ("x.7.25", "requireptr"),
    ("x.7.26", "authfailure"),
    ("x.7.27", "notaccept"),
    ("x.7.", "securityerror"),
)

# Reply code -> reason, when neither text nor enhanced code decides.
REPLY_RULES: tuple[tuple[str, str], ...] = (
    ("421", "blocked"),
    ("500", "syntaxerror"),
    ("501", "syntaxerror"),
    ("502", "syntaxerror"),
    ("503", "syntaxerror"),
    ("504", "syntaxerror"),
    ("450", "mailboxfull"),
    ("451", "systemerror"),
    ("452", "mailboxfull"),
    ("550", "userunknown"),
    ("551", "hasmoved"),
    ("552", "mailboxfull"),
    ("553", "userunknown"),
    ("554", "rejected"),
    ("556", "notaccept"),
)

# (reason so far, regex over the whole report, reason instead). A recipient refused after
# the message was sent (in reply to DATA) is a content filter, not an unknown user (Sisimai).
CONTEXT_RULES: tuple[tuple[str, str, str], ...] = (
    (
        "userunknown",
        r">>> data|end of data|data command|command:? data|after data|reply to data",
        "filtered",
    ),
    ("onhold", r"groups\.google|google groups|googlegroups", "rejected"),
    (
        "onhold",
        r"not accept our requests to connect|delivery failed \d+ attempts|"
        r"not delivered within|retry timeout|could not be delivered for",
        "expired",
    ),
)
# Receiving mail services with refusal wording or codes of their own, by the host that
# answered or the recipient's domain (name -> domain suffixes).
RHOST_GROUPS: dict[str, tuple[str, ...]] = {
    "nttdocomo": ("docomo.ne.jp",),
    "kddi": ("ezweb.ne.jp", "au.com"),
    "orange": ("laposte.net", "orange.fr", "wanadoo.fr"),
    "mimecast": ("mimecast.com",),
    "aol": ("mx.aol.com", "mail.aol.com"),
}
# Orange and La Poste end each refusal with a reference such as "LPN007_416" or "OFR_505"
# (their postmaster pages list them); its last three digits name the reason. References that
# only say "try later" are left to the general rules.
ORANGE_REFERENCES: dict[str, str] = {
    "101": "blocked",
    "102": "blocked",
    "103": "blocked",
    "104": "toomanyconn",
    "305": "securityerror",
    "401": "authfailure",
    "402": "securityerror",
    "403": "rejected",
    "405": "rejected",
    "415": "rejected",
    "416": "userunknown",
    "417": "mailboxfull",
    "420": "suspend",
    "421": "rejected",
    "426": "suspend",
    "505": "systemerror",
    "506": "spamdetected",
    "510": "blocked",
    "514": "mesgtoobig",
    "517": "authfailure",
    "630": "policyviolation",
    "999": "blocked",
}
_ORANGE_REFERENCE = re.compile(r"\b(?:lpn|ofr|ouk)[a-z]*\d*[_-]?(\d{3})\b")
# Spectrum (Charter) ends a refusal with "AUP#In-1310" / "AUP#O-1010" and publishes what
# each four-digit code means: (first code, last code, reason).
SPECTRUM_AUP_CODES: tuple[tuple[int, int, str], ...] = (
    (1000, 1000, "blocked"),
    (1010, 1080, "rejected"),
    (1090, 1090, "systemerror"),
    (1100, 1150, "requireptr"),
    (1160, 1190, "policyviolation"),
    (1200, 1250, "blocked"),
    (1260, 1260, "networkerror"),
    (1300, 1340, "toomanyconn"),
    (1350, 1490, "speeding"),
    (1500, 1520, "rejected"),
    (1530, 1530, "mesgtoobig"),
    (1540, 1550, "speeding"),
    (1560, 1560, "policyviolation"),
    (1580, 1580, "speeding"),
)
_SPECTRUM_AUP = re.compile(r"\baup#(?:in?|o(?:ut)?)?-?(\d{4})\b")
# (service, reply code, enhanced status, refused command, text regex, reason), in order,
# decided (as Sisimai's per-host tables do) before the general rules; "" matches anything.
# NTT docomo answers "550 Unknown user" both at RCPT (the mailbox is missing) and after DATA,
# where with a bare 5.0.0 status it is the recipient's refusal of the sender (its reception
# settings); 5.2.0 marks its filter; its own 552 / 503 / 504 wording names the reason
# outright. KDDI (au) quotes the address in "<addr>: User unknown" for a missing mailbox and
# leaves it out (": User unknown") when its filter refused the sender. AOL's own relays call a
# domain whose MX lookup gives a malformed answer one that accepts no mail. Mimecast's replies are
# the ones its SMTP error code list documents, each with its reply code.
RHOST_RULES: tuple[tuple[str, str, str, str, str, str], ...] = (
    ("nttdocomo", "", "5.1.1", "", "", "userunknown"),
    ("nttdocomo", "", "5.2.0", "", "", "filtered"),
    ("nttdocomo", "", "", "", r"552 too much mail data", "mailboxfull"),
    ("nttdocomo", "", "", "", r"552 too many recipients", "toomanyconn"),
    (
        "nttdocomo",
        "",
        "",
        "",
        r"503 bad sequence of commands|504 command parameter not implemented",
        "syntaxerror",
    ),
    ("nttdocomo", "", "5.0.0", "RCPT", "", "userunknown"),
    ("nttdocomo", "", "5.0.0", "DATA", "", "rejected"),
    ("aol", "", "", "", r"host or domain name not found", "hostunknown"),
    ("aol", "", "", "", r"type=mx: malformed or unexpected name server reply", "notaccept"),
    ("kddi", "", "", "", r"550 : user unknown", "filtered"),
    ("kddi", "", "", "", r">: user unknown", "userunknown"),
    (
        "mimecast",
        "550",
        "",
        "",
        r"(spf|dkim|dmarc) sender invalid - envelope rejected",
        "authfailure",
    ),
    ("mimecast", "451", "", "", r"internal resources are temporarily unavailable", "badreputation"),
    ("mimecast", "550", "", "", r"local ct ip reputation - \(reject\)", "badreputation"),
    ("mimecast", "421", "", "", r"sender address blocked", "blocked"),
    (
        "mimecast",
        "451",
        "",
        "",
        r"recipient temporarily unavailable|ip temporarily blacklisted",
        "blocked",
    ),
    ("mimecast", "550", "", "", r"journal messages past the expiration", "expired"),
    (
        "mimecast",
        "553",
        "",
        "",
        r"this route requires (encryption \(tls\)|tls version 1\.2|high-strength ciphers)",
        "failedstarttls",
    ),
    ("mimecast", "554", "", "", r"configuration is invalid for this certificate", "failedstarttls"),
    ("mimecast", "554", "", "", r"maximum email size exceeded", "mesgtoobig"),
    ("mimecast", "", "", "", r"the incorrect hostname used for inbounds", "networkerror"),
    ("mimecast", "554", "", "", r"mail loop detected", "networkerror"),
    ("mimecast", "451", "", "", r"open relay (is )?not allowed", "norelaying"),
    ("mimecast", "451", "", "", r"account inbounds disabled", "notaccept"),
    ("mimecast", "451", "", "", r"account outbounds disabled|hostname is not authori", "onhold"),
    ("mimecast", "550", "", "", r"journal message past expiration", "onhold"),
    (
        "mimecast",
        "550",
        "",
        "",
        r"anti-spoofing policy - inbound not allowed|rejected by header-based anti-spoofing",
        "policyviolation",
    ),
    (
        "mimecast",
        "",
        "",
        "",
        r"message bounced due to content examination policy",
        "policyviolation",
    ),
    ("mimecast", "554", "", "", r"host network,? not allowed", "policyviolation"),
    (
        "mimecast",
        "550",
        "",
        "",
        r"administrative prohibition envelope blocked|envelope blocked - user (domain )?entry|"
        r"rejected by header-based (manually )?blocked senders|"
        r"envelope rejected - block policy for envelope from",
        "rejected",
    ),
    ("mimecast", "535", "", "", r"incorrect authentication data", "securityerror"),
    ("mimecast", "550", "", "", r"submitter failed to (authenticate|disabled)", "securityerror"),
    (
        "mimecast",
        "451",
        "",
        "",
        r"unable to process (connection|command|an email)|message ended early",
        "systemerror",
    ),
    ("mimecast", "451", "", "", r"account service is temporarily unavailable", "toomanyconn"),
    ("mimecast", "452", "", "", r"too many recipients", "toomanyconn"),
    ("mimecast", "550", "", "", r"exceeding outbound thread limit", "toomanyconn"),
    ("mimecast", "501", "", "", r"invalid address", "userunknown"),
    ("mimecast", "503", "", "", r"user unknown", "userunknown"),
    ("mimecast", "550", "", "", r"invalid recipient", "userunknown"),
    ("mimecast", "554", "", "", r"email rejected due to security policies", "virusdetected"),
)
# The host that gave the reply, as reports name it: RFC 3464 "Remote-MTA: dns; host",
# Postfix "host NAME[IP] said", Exim "host NAME [IP]", Sendmail "... while talking to NAME.:"
# (not Postfix's own "the mail system at host NAME").
_RECEIVING_HOST = re.compile(
    r"(?:remote-mta: ?dns; ?|while talking to )([a-z0-9-]+(?:\.[a-z0-9-]+)+)|"
    r"\bhost ([a-z0-9-]+(?:\.[a-z0-9-]+)+) ?(?:\[|said)"
)
# The host that wrote the report: RFC 3464 "Reporting-MTA: dns; host", Postfix's "The mail
# system at host NAME".
_REPORTING_HOST = re.compile(
    r"(?:reporting-mta: ?dns; ?|the mail system at host )([a-z0-9-]+(?:\.[a-z0-9-]+)+)"
)
# The SMTP command a report says was refused (first match wins), as Sisimai reads it from the
# transcript: Postfix "in reply to RCPT TO command", Exim "after RCPT TO", Sendmail ">>> DATA",
# qmail "does not like recipient", DragonFly "did not like our RCPT TO", ...
COMMAND_RULES: tuple[tuple[str, str], ...] = (
    (
        "DATA",
        r"end of data|>>> data|after data|in reply to data|data command|command:? data|"
        r"\(data\)|reply to data",
    ),
    (
        "RCPT",
        r"rcpt to|>>> rcpt|\brcpt\b|does not like recipient|\[rcpt_to\]|"
        r"recipient address rejected",
    ),
    ("MAIL", r"mail from|>>> mail\b|after mail\b|in reply to mail\b"),
    (
        "CONN",
        r"initial connection|after (ehlo|helo)|in reply to (ehlo|helo)|>>> (ehlo|helo)|"
        r"greeting|while connected|connect(ion)? to .* failed",
    ),
)
# Which software wrote the report, from its fixed wording (Sisimai decides per engine; the
# model learns per engine from these names). Ordered, first match wins.
MTA_RULES: tuple[tuple[str, str], ...] = (
    ("postfix", r"this is the (postfix|mail system) program|the mail system at host|postfix"),
    ("exim", r"created automatically by mail delivery software|smtp error from remote mail"),
    ("qmail", r"qmail-send program|qmail|does not like recipient"),
    ("sendmail", r"the original message was received at|----- transcript of session follows"),
    ("opensmtpd", r"this is the mailer-daemon, please do not reply"),
    ("dragonfly", r"dragonfly mail agent|did not like our rcpt"),
    (
        "exchange",
        r"did not reach the following recipient|microsoft exchange|diagnostic information",
    ),
    ("gmail", r"google tried to deliver your message|address not found|googlemail|gsmtp"),
    ("outlook", r"outlook\.com|hotmail|office ?365|delivery has failed to these recipients"),
    ("amazon", r"amazonses|amazon ses|notificationtype"),
    ("domino", r"lotus|notes|domino"),
    ("yahoo", r"yahoo"),
    ("courier", r"courier mail server"),
    ("messagingserver", r"this report relates to a message you sent"),
)
_COMPILED_MTAS = tuple((name, re.compile(pattern)) for name, pattern in MTA_RULES)
_COMPILED_COMMANDS = tuple((name, re.compile(pattern)) for name, pattern in COMMAND_RULES)
_COMPILED_CONTEXT = tuple((a, re.compile(p), b) for a, p, b in CONTEXT_RULES)
# The catch-all wording that introduces a refusal without saying why.
_GENERIC_REJECTION = frozenset({"recipient rejected", "address rejected"})
_COMPILED = tuple((reason, re.compile(pattern)) for reason, pattern in TEXT_RULES)
# A local delivery agent's refusal (Sendmail's mail.local "unknown user: name"): the mailbox
# itself is missing on the final host, whatever command the report names.
_LOCAL_DELIVERY = re.compile(r"\bmail\.local: unknown user")
# The command an engine reader found for this recipient (bounces._from_findings puts it at
# the front of the context); it beats a DATA elsewhere in a report of several conversations.
_NAMED_COMMAND = re.compile(r"\[failed-command: in reply to (\w+) command\]")
# Put at the front of the context by bounces._from_findings for a report whose layout gives
# the remote server's words only: no reply code, status or SMTP command of its own.
PASS_THROUGH_MARKER = "[report-layout: remote words only]"
_COMPILED_DECISIVE = tuple((reason, re.compile(p)) for reason, p in DECISIVE_TEXT_RULES)
# The code (and status) that starts each line of a multi-line SMTP reply (RFC 5321 4.2.1:
# "550-5.7.1 ..." then "550 5.7.1 ..."): once the lines are joined they split the sentence.
_MULTILINE_REPLY = re.compile(r"\b[245]\d\d-")
_LINE_PREFIX = re.compile(r"(?<!\S)[245]\d\d[- ](?:[245]\.\d{1,3}\.\d{1,3} )?")


def reply_sentence(text: str) -> str:
    """The lower-cased text with white space collapsed and, in a multi-line SMTP reply, the
    code and status that start each line removed, so that wording split over lines matches."""
    lowered = " ".join(text.lower().split())
    if _MULTILINE_REPLY.search(lowered):
        lowered = " ".join(_LINE_PREFIX.sub(" ", lowered).split())
    return lowered


@dataclass(frozen=True)
class RuleMatch:
    """What the rules decided and why (``source`` is text, status, reply or none)."""

    reason: str
    hard: bool
    source: str
    evidence: str


def is_hard(reason: str, code: str = "", enhanced: str = "") -> bool:
    """Sisimai's hard/soft verdict: hard for the address-level reasons; a null-MX style
    ``notaccept`` only when the reply or status is permanent (not 4xx / 4.x.x)."""
    if reason not in HARD_REASONS:
        return False
    if reason != "notaccept":
        return True  # Sisimai keeps an unknown user hard even on a 4xx reply
    return not (code.startswith("4") or enhanced.startswith("4."))


def reporting_mta(context: str) -> str:
    """The software that wrote the report, from its wording (:data:`MTA_RULES`); ``""`` when
    not recognised."""
    lowered = " ".join(context.lower().split())[:6000]
    for name, pattern in _COMPILED_MTAS:
        if pattern.search(lowered):
            return name
    return ""


def failed_command(text: str, context: str = "") -> str:
    """The SMTP command the reply answered (DATA, RCPT, MAIL, CONN), read from the diagnostic
    text, else from the whole report; ``""`` when the report does not say."""
    for source in (text, context):
        lowered = " ".join(source.lower().split())[:6000]
        for name, pattern in _COMPILED_COMMANDS:
            if pattern.search(lowered):
                return name
    return ""


def match_reply(code: str, enhanced: str, text: str, context: str = "") -> RuleMatch:
    """Apply the tables in order: text patterns, enhanced status, reply code; then let the
    report's wider ``context`` refine the answer (:data:`CONTEXT_RULES`). Never raises."""
    found = _match(code, enhanced, text)
    lowered = " ".join(context.lower().split())[:6000]
    named = _NAMED_COMMAND.search(lowered[:1000])
    by_host = _receiving_host_reason(code, enhanced, text, lowered, named.group(1) if named else "")
    if by_host:
        return RuleMatch(by_host, is_hard(by_host, code, enhanced), "host", by_host)
    for before, pattern, after in _COMPILED_CONTEXT:
        if before == "userunknown" and enhanced[1:4] == ".1.":
            continue  # a specific x.1.x status names the address whatever the command
        if before == "userunknown" and named and named.group(1) != "data":
            continue  # the engine reader found this recipient's own command; not DATA
        if found.reason == before and pattern.search(lowered):
            return RuleMatch(after, is_hard(after, code, enhanced), "context", pattern.pattern)
    if (
        found.reason == "userunknown"
        and found.source == "text"
        and (
            code.startswith("5")
            or (not code and enhanced.startswith("5."))
            or (not code and not enhanced and PASS_THROUGH_MARKER in lowered[:1000])
        )
        and enhanced[1:4] != ".1."
        and failed_command(text, context) == ""
        and not _LOCAL_DELIVERY.search(text.lower())
    ):
        # Sisimai keeps "unknown user" wording for x.1.x statuses and refused RCPTs; a 5xx
        # reply after an unknown command (a filter's canned answer) is "filtered", and so is
        # the same wording in a layout that passes on the remote's words alone (its decoder
        # in Sisimai decides nothing itself; X1, X2, Zoho)
        return RuleMatch("filtered", False, "context", "unknown user without RCPT or x.1.x")
    if (
        found.source == "text"
        and found.evidence in _GENERIC_REJECTION
        and enhanced[1:3] in (".7",)
        and enhanced[1:] not in (".7.0", ".7.1")
    ):
        # Postfix's "Recipient address rejected:" only introduces the reason; a specific
        # x.7.x security status (RFC 3463, RFC 7372: x.7.26 authentication) says which
        status = _match("", enhanced, "")
        if status.source == "status":
            return RuleMatch(status.reason, status.hard, "status", enhanced)
    if (
        found.reason in ("userunknown", "hostunknown")
        and found.source == "text"
        and failed_command(text, context) == "MAIL"
    ):
        # a refused MAIL FROM: the unknown address or domain is the sender's (RFC 5321 3.3)
        return RuleMatch("rejected", False, "context", "address refused after MAIL FROM")
    if (
        found.source in ("reply", "none")
        and not (code.startswith("2") or enhanced.startswith("2."))
        and failed_command(text, context) == "CONN"
    ):
        # refused at the greeting or EHLO/HELO with no reason given: before any address
        # was sent only the connecting host can be refused (RFC 5321 3.1, 4.1.1.1)
        return RuleMatch("blocked", False, "context", "refused before MAIL FROM")
    if found.reason == "userunknown" and found.source == "text" and enhanced[1:] == ".1.2":
        # the status names the domain; generic "address ... unknown" wording does not beat it
        return RuleMatch("hostunknown", True, "status", enhanced)
    if found.reason == "hostunknown" and (code.startswith("4") or enhanced.startswith("4.")):
        # a temporary DNS failure is a network problem, not a missing domain (as Sisimai)
        return RuleMatch("networkerror", False, found.source, found.evidence)
    return found


def receiving_host(text: str, context: str = "") -> str:
    """The host that gave the reply (:data:`_RECEIVING_HOST`), from the diagnostic text, else
    from the whole report; ``""`` when neither names one."""
    for source in (text, context):
        found = _RECEIVING_HOST.search(" ".join(source.lower().split())[:6000])
        if found:
            return (found.group(1) or found.group(2)).rstrip(".")
    return ""


def receiving_service(text: str, context: str = "") -> str:
    """The :data:`RHOST_GROUPS` service that refused: by the host that answered, else by the
    domain of an address the reply names, else by the host that wrote the report (a service
    reporting its own refusal); ``""`` when none is one of them."""
    hosts = [receiving_host(text, context)]
    hosts += [a.rsplit("@", 1)[1] for a in ADDRESS.findall(text.lower()[:6000])]
    reporter = _REPORTING_HOST.search(" ".join(context.lower().split())[:6000])
    hosts += [reporter.group(1).rstrip(".")] if reporter else []
    for host in hosts:
        for name, suffixes in RHOST_GROUPS.items():
            if host and any(host == s or host.endswith("." + s) for s in suffixes):
                return name
    return ""


def _receiving_host_reason(code: str, enhanced: str, text: str, context: str, named: str) -> str:
    """The reason the refusing service's own published codes or table give this reply
    (:data:`SPECTRUM_AUP_CODES`, :data:`ORANGE_REFERENCES`, :data:`RHOST_RULES`); ``""`` when
    it has none."""
    lowered = " ".join(text.lower().split())
    aup = _SPECTRUM_AUP.search(lowered)
    if aup:
        number = int(aup.group(1))
        return next((r for low, high, r in SPECTRUM_AUP_CODES if low <= number <= high), "")
    service = receiving_service(text, context)
    if not service:
        return ""
    if service == "orange":
        reference = _ORANGE_REFERENCE.search(lowered)
        return ORANGE_REFERENCES.get(reference.group(1), "") if reference else ""
    command = named.upper() or failed_command(text, context)
    for name, reply, status, refused, wording, reason in RHOST_RULES:
        if name != service or (reply and reply != code) or (status and status != enhanced):
            continue
        if (not refused or refused == command) and (not wording or re.search(wording, lowered)):
            return reason
    return ""


def _match(code: str, enhanced: str, text: str) -> RuleMatch:
    if enhanced.startswith("2.") or (code.startswith("2") and not enhanced):
        return RuleMatch("delivered", False, "status", enhanced or code)
    lowered = reply_sentence(text)[:4000]
    for reason, pattern in _COMPILED_DECISIVE:
        found = pattern.search(lowered)
        if found:
            return RuleMatch(reason, is_hard(reason, code, enhanced), "text", found.group(0))
    weak: RuleMatch | None = None
    for reason, pattern in _COMPILED:
        found = pattern.search(lowered)
        if found and not _gives_way(reason, enhanced):
            return RuleMatch(reason, is_hard(reason, code, enhanced), "text", found.group(0))
        if found:
            weak = RuleMatch(reason, is_hard(reason, code, enhanced), "text", found.group(0))
            break  # a generic phrase: the specific status below decides
    status = _status_reason(enhanced)
    if status:
        return RuleMatch(status, is_hard(status, code, enhanced), "status", enhanced)
    if weak is not None:
        return weak  # a status the tables do not know decides nothing: the wording stands
    for reply, reason in REPLY_RULES:
        if code == reply:
            return RuleMatch(reason, is_hard(reason, code, enhanced), "reply", code)
    if code.startswith("2") or enhanced.startswith("2."):
        return RuleMatch("delivered", False, "reply", code or enhanced)
    return RuleMatch("onhold", False, "none", "no rule matched")


def _gives_way(reason: str, enhanced: str) -> bool:
    """Whether a text rule's ``reason`` yields to the enhanced status: generic wording to an
    address, mailbox or system status (x.1.x, x.2.x, x.3.x), and :data:`STATUS_OVER_TEXT`."""
    if reason in WEAK_TEXT_REASONS and enhanced[1:3] in (".1", ".2", ".3"):
        return True
    return enhanced[1:] in STATUS_OVER_TEXT.get(reason, frozenset())


def _status_reason(enhanced: str) -> str:
    """The reason :data:`STATUS_RULES` give an enhanced status; ``""`` when none does."""
    if re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", enhanced):
        generic = "x." + enhanced[2:]
        for prefix, reason in STATUS_RULES:
            if generic == prefix or (prefix.endswith(".") and generic.startswith(prefix)):
                return reason
    return ""


def classify_reply(
    code: str | int | None, enhanced: str | None, text: str | None
) -> tuple[str, bool]:
    """(Sisimai reason, hard bounce) of one SMTP reply by the rules alone.

    ``classify_reply(550, "5.1.1", "user unknown") == ("userunknown", True)``."""
    found = match_reply(str(code or ""), enhanced or "", text or "")
    return found.reason, found.hard
