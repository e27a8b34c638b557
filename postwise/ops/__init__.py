"""Operations: what Postwise learns about its mail from the outside world (domain posture,
DMARC aggregate and failure reports, SMTP TLS reports) and, later, metrics and alerts."""
