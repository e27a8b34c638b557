"""Email authentication: SPF, DKIM, DMARC, ARC verification and signing, Authentication-Results.
All DNS goes through :class:`postwise.auth.dns.Resolver`."""
