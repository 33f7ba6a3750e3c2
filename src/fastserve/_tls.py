"""TLS helpers with werkzeug's names and semantics.

``load_ssl_context``, ``generate_adhoc_ssl_pair``, ``generate_adhoc_ssl_context``,
``make_ssl_devcert`` and ``is_ssl_error`` behave as their namesakes in
``werkzeug.serving`` 3.1.9: same signatures, same certificate
fields, same file formats, same ``TypeError`` when ``cryptography`` is missing
(our message adds how to install the ``tls`` extra).

``cryptography`` is an optional dependency (the ``tls`` extra). It is imported
only when a certificate is generated, never at module import, so plain HTTP
and ``(cert, key)`` / ``SSLContext`` TLS work without it.

A TLS ClientHello on a plain-HTTP port needs no helper here: its first byte
(0x16, the handshake record type of RFC 8446 §5.1) is not a token character,
so the request parser refuses it at once (``InvalidMethodError``, 400).
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
    from cryptography.x509 import Certificate

try:
    import ssl
except ImportError:  # pragma: no cover - CPython built without OpenSSL

    class _SslUnavailable:
        """Stands in for :mod:`ssl`: any use raises, as werkzeug's stand-in does."""

        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(
                "SSL is unavailable because this Python runtime was not"
                " compiled with SSL/TLS support."
            )

    ssl = _SslUnavailable()  # type: ignore[assignment]
    #: Errors that mean the peer went away (werkzeug's ``connection_dropped_errors``).
    connection_dropped_errors: tuple[type[BaseException], ...] = (
        ConnectionError,
        socket.timeout,
    )
else:
    connection_dropped_errors = (ConnectionError, socket.timeout, ssl.SSLEOFError)

__all__ = [
    "connection_dropped_errors",
    "generate_adhoc_ssl_context",
    "generate_adhoc_ssl_pair",
    "is_ssl_error",
    "load_ssl_context",
    "make_ssl_devcert",
]

#: Start of werkzeug's message (kept verbatim: users and tests match on it),
#: followed by how to get the optional dependency.
MISSING_CRYPTOGRAPHY: Final[str] = (
    "Using ad-hoc certificates requires the cryptography library."
    " Install it with: pip install 'fastserve[tls]' (or: pip install cryptography)."
)

#: Validity of generated certificates, counted from "now" in UTC.
ADHOC_VALIDITY: Final[timedelta] = timedelta(days=365)
#: werkzeug's default common name for ad-hoc certificates.
ADHOC_DEFAULT_CN: Final[str] = "*"


def _import_cryptography() -> SimpleNamespace:
    """Import the parts of ``cryptography`` the generators need, or explain the extra.

    :raises TypeError: ``cryptography`` is not installed (werkzeug's exception type).
    """
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:
        raise TypeError(MISSING_CRYPTOGRAPHY) from None
    return SimpleNamespace(
        x509=x509,
        hashes=hashes,
        serialization=serialization,
        rsa=rsa,
        ExtendedKeyUsageOID=ExtendedKeyUsageOID,
        NameOID=NameOID,
    )


def load_ssl_context(
    cert_file: str, pkey_file: str | None = None, protocol: int | None = None
) -> ssl.SSLContext:
    """Load a server-side SSL context from a certificate and a private key.

    :param cert_file: path of the PEM certificate (chain); it may also hold the key.
    :param pkey_file: path of the PEM private key, when not in ``cert_file``.
    :param protocol: an ``ssl.PROTOCOL_*`` constant; defaults to
        ``ssl.PROTOCOL_TLS_SERVER``.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if protocol is None else protocol)
    ctx.load_cert_chain(cert_file, pkey_file)
    return ctx


def generate_adhoc_ssl_pair(cn: str | None = None) -> tuple[Certificate, RSAPrivateKey]:
    """Generate a self-signed certificate and its RSA private key.

    The certificate is werkzeug's: RSA-2048 (e=65537), subject and issuer
    ``O=Dummy Certificate, CN=<cn>``, a random serial number, valid from now
    for 365 days, extended key usage serverAuth, subject alternative names
    ``DNS:<cn>`` and ``DNS:*.<cn>``, signed with SHA-256.

    :param cn: the common name; ``None`` means ``"*"``.
    :return: ``(certificate, private_key)`` as ``cryptography`` objects.
    :raises TypeError: ``cryptography`` is not installed (install ``fastserve[tls]``).
    """
    c = _import_cryptography()
    if cn is None:
        cn = ADHOC_DEFAULT_CN
    key = c.rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = c.x509.Name(
        [
            c.x509.NameAttribute(c.NameOID.ORGANIZATION_NAME, "Dummy Certificate"),
            c.x509.NameAttribute(c.NameOID.COMMON_NAME, cn),
        ]
    )
    now = datetime.now(timezone.utc)
    builder = (
        c.x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(c.x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + ADHOC_VALIDITY)
        .add_extension(c.x509.ExtendedKeyUsage([c.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            c.x509.SubjectAlternativeName([c.x509.DNSName(cn), c.x509.DNSName(f"*.{cn}")]),
            critical=False,
        )
    )
    return builder.sign(key, c.hashes.SHA256()), key


def _pem_pair(cert: Certificate, key: RSAPrivateKey) -> tuple[bytes, bytes]:
    """PEM bytes of a certificate and of its key (unencrypted, TraditionalOpenSSL)."""
    s = _import_cryptography().serialization
    key_pem = key.private_bytes(
        encoding=s.Encoding.PEM,
        format=s.PrivateFormat.TraditionalOpenSSL,
        encryption_algorithm=s.NoEncryption(),
    )
    return cert.public_bytes(s.Encoding.PEM), key_pem


def make_ssl_devcert(
    base_path: str, host: str | None = None, cn: str | None = None
) -> tuple[str, str]:
    """Write a self-signed development certificate and key next to ``base_path``.

    Creates ``<base_path>.crt`` and ``<base_path>.key`` (PEM; the key is not
    encrypted). Use the returned pair as ``ssl_context``.

    :param base_path: path prefix of the two files.
    :param host: the host name the certificate is for; overrides ``cn``.
    :param cn: the common name when ``host`` is not given; ``None`` means ``"*"``.
    :return: ``(cert_path, key_path)``.
    :raises TypeError: ``cryptography`` is not installed (install ``fastserve[tls]``).
    """
    if host is not None:
        cn = host
    cert_pem, key_pem = _pem_pair(*generate_adhoc_ssl_pair(cn=cn))
    cert_file, pkey_file = f"{base_path}.crt", f"{base_path}.key"
    with open(cert_file, "wb") as f:
        f.write(cert_pem)
    with open(pkey_file, "wb") as f:
        f.write(key_pem)
    return cert_file, pkey_file


def generate_adhoc_ssl_context() -> ssl.SSLContext:
    """Return a server SSL context with a fresh self-signed certificate (CN ``*``).

    The certificate and key are written to two temporary files (removed when
    the interpreter exits) because :mod:`ssl` loads certificates from files.

    :raises TypeError: ``cryptography`` is not installed (install ``fastserve[tls]``).
    """
    cert_pem, key_pem = _pem_pair(*generate_adhoc_ssl_pair())
    paths = []
    for data in (cert_pem, key_pem):
        fd, path = tempfile.mkstemp()
        atexit.register(os.remove, path)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        paths.append(path)
    return load_ssl_context(paths[0], paths[1])


def is_ssl_error(error: BaseException | None = None) -> bool:
    """Tell whether ``error`` (default: the exception being handled) is an ``ssl.SSLError``."""
    if error is None:
        error = sys.exc_info()[1]
    return isinstance(error, ssl.SSLError)
