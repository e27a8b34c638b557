"""The STARTTLS certificate: the operator's (``tls_cert_file`` / ``tls_key_file``) or, for local
use, a self-signed one generated once into ``data_dir/tls``."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

from postwise.core.durable import write_durably
from postwise.core.errors import SettingsError
from postwise.core.settings import Settings


def generate_self_signed(cert_file: Path, key_file: Path, hostname: str) -> None:
    """Write a self-signed certificate for ``hostname`` (EC P-256, ten years)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_durably(key_file, [key_pem])
    write_durably(cert_file, [certificate.public_bytes(serialization.Encoding.PEM)])


def server_tls_context(settings: Settings) -> ssl.SSLContext:
    """The server-side TLS context for STARTTLS. Raises SettingsError when the configured
    certificate or key cannot be loaded."""
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        cert_file, key_file = settings.tls_cert_file, settings.tls_key_file
    else:
        cert_file = settings.data_dir / "tls" / "gateway.crt"
        key_file = settings.data_dir / "tls" / "gateway.key"
        if not (cert_file.is_file() and key_file.is_file()):
            generate_self_signed(cert_file, key_file, settings.smtp_hostname)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as error:
        raise SettingsError(
            f"cannot load the TLS certificate {cert_file} with key {key_file}: {error}"
        ) from error
    return context
