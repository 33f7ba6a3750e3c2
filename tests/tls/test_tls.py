"""Unit tests for fastserve._tls: werkzeug's TLS helpers and the wrong-protocol probe."""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from helpers import raises_three_ways

from fastserve import _tls, errors


def _name_attrs(name: x509.Name) -> list[tuple[str, str]]:
    return [(a.oid.dotted_string, str(a.value)) for a in name]


def _certificate_shape(cert: x509.Certificate, key: rsa.RSAPrivateKey) -> dict[str, object]:
    """Everything about a generated pair that does not depend on randomness or time."""
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    return {
        "subject": _name_attrs(cert.subject),
        "issuer": _name_attrs(cert.issuer),
        "key_size": key.key_size,
        "exponent": key.public_key().public_numbers().e,
        "hash": cert.signature_hash_algorithm.name if cert.signature_hash_algorithm else None,
        "san": (san.critical, san.value.get_values_for_type(x509.DNSName)),
        "eku": (eku.critical, list(eku.value)),
        "extensions": sorted(e.oid.dotted_string for e in cert.extensions),
        "lifetime": cert.not_valid_after_utc - cert.not_valid_before_utc,
    }


# --- generate_adhoc_ssl_pair ----------------------------------------------------------


def test_adhoc_pair_default_fields() -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    cert, key = _tls.generate_adhoc_ssl_pair()
    after = datetime.now(timezone.utc)
    shape = _certificate_shape(cert, key)
    expected_name = [
        (NameOID.ORGANIZATION_NAME.dotted_string, "Dummy Certificate"),
        (NameOID.COMMON_NAME.dotted_string, "*"),
    ]
    assert shape["subject"] == expected_name
    assert shape["issuer"] == expected_name
    assert shape["key_size"] == 2048
    assert shape["exponent"] == 65537
    assert shape["hash"] == "sha256"
    assert shape["san"] == (False, ["*", "*.*"])
    assert shape["eku"] == (False, [ExtendedKeyUsageOID.SERVER_AUTH])
    assert shape["lifetime"] == timedelta(days=365)
    assert before <= cert.not_valid_before_utc <= after
    # Self-signed: the certificate verifies against its own public key.
    cert.verify_directly_issued_by(cert)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()


def test_adhoc_pair_custom_cn() -> None:
    cert, _ = _tls.generate_adhoc_ssl_pair(cn="dev.example")
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dev.example"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["dev.example", "*.dev.example"]


def test_adhoc_pair_serials_are_random() -> None:
    first, _ = _tls.generate_adhoc_ssl_pair()
    second, _ = _tls.generate_adhoc_ssl_pair()
    assert first.serial_number != second.serial_number


def test_adhoc_pair_matches_werkzeug() -> None:
    """Differential: our certificate has exactly the shape werkzeug's has."""
    serving = pytest.importorskip("werkzeug.serving")
    ours = _certificate_shape(*_tls.generate_adhoc_ssl_pair(cn="localhost"))
    theirs = _certificate_shape(*serving.generate_adhoc_ssl_pair(cn="localhost"))
    assert ours == theirs


# --- make_ssl_devcert ------------------------------------------------------------------


def test_devcert_writes_pem_files(tmp_path: Path) -> None:
    base = str(tmp_path / "dev")
    cert_file, key_file = _tls.make_ssl_devcert(base)
    assert (cert_file, key_file) == (f"{base}.crt", f"{base}.key")
    cert_pem = Path(cert_file).read_bytes()
    key_pem = Path(key_file).read_bytes()
    assert cert_pem.startswith(b"-----BEGIN CERTIFICATE-----\n")
    # TraditionalOpenSSL, unencrypted (werkzeug's format).
    assert key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert b"ENCRYPTED" not in key_pem
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "*"


@pytest.mark.parametrize(
    ("host", "cn", "expected"),
    [
        ("localhost", None, "localhost"),
        (None, "dev.test", "dev.test"),
        ("localhost", "ignored.test", "localhost"),
    ],
    ids=["host", "cn", "host-overrides-cn"],
)
def test_devcert_common_name(
    tmp_path: Path, host: str | None, cn: str | None, expected: str
) -> None:
    cert_file, _ = _tls.make_ssl_devcert(str(tmp_path / "dev"), host=host, cn=cn)
    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == expected


# --- load_ssl_context ------------------------------------------------------------------


def test_load_ssl_context_default_protocol(tmp_path: Path) -> None:
    ctx = _tls.load_ssl_context(*_tls.make_ssl_devcert(str(tmp_path / "dev")))
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.protocol == ssl.PROTOCOL_TLS_SERVER


def test_load_ssl_context_explicit_protocol(tmp_path: Path) -> None:
    cert_file, key_file = _tls.make_ssl_devcert(str(tmp_path / "dev"))
    ctx = _tls.load_ssl_context(cert_file, key_file, ssl.PROTOCOL_TLS_CLIENT)
    assert ctx.protocol == ssl.PROTOCOL_TLS_CLIENT


def test_load_ssl_context_combined_pem(tmp_path: Path) -> None:
    """``pkey_file=None``: the key is read from the certificate file."""
    cert_file, key_file = _tls.make_ssl_devcert(str(tmp_path / "dev"))
    combined = tmp_path / "combined.pem"
    combined.write_bytes(Path(cert_file).read_bytes() + Path(key_file).read_bytes())
    assert isinstance(_tls.load_ssl_context(str(combined)), ssl.SSLContext)


def test_load_ssl_context_missing_key(tmp_path: Path) -> None:
    cert_file, _ = _tls.make_ssl_devcert(str(tmp_path / "dev"))
    with pytest.raises(ssl.SSLError):
        _tls.load_ssl_context(cert_file)


def test_load_ssl_context_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _tls.load_ssl_context(str(tmp_path / "nope.crt"), str(tmp_path / "nope.key"))


# --- generate_adhoc_ssl_context --------------------------------------------------------


def test_adhoc_context_temp_files_removed_at_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[tuple[object, tuple[object, ...]]] = []
    monkeypatch.setattr(_tls.atexit, "register", lambda f, *a: registered.append((f, a)))
    ctx = _tls.generate_adhoc_ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.protocol == ssl.PROTOCOL_TLS_SERVER
    paths = [Path(str(args[0])) for _, args in registered]
    assert [f for f, _ in registered] == [_tls.os.remove, _tls.os.remove]
    assert len(set(paths)) == 2
    contents = sorted(p.read_bytes().split(b"\n", 1)[0] for p in paths)
    assert contents == [b"-----BEGIN CERTIFICATE-----", b"-----BEGIN RSA PRIVATE KEY-----"]
    for func, args in registered:
        func(*args)  # type: ignore[operator]
    assert not any(p.exists() for p in paths)


def _serve_one_handshake(ctx: ssl.SSLContext, listener: socket.socket) -> None:
    conn, _ = listener.accept()
    try:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(tls.recv(100).upper())
    except (ssl.SSLError, OSError):
        conn.close()


def _handshake(ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, server_hostname: str) -> bytes:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        t = threading.Thread(target=_serve_one_handshake, args=(ctx, listener))
        t.start()
        try:
            with socket.create_connection(listener.getsockname(), timeout=10) as raw:
                with client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
                    tls.sendall(b"ping")
                    return tls.recv(100)
        finally:
            t.join(10)


def test_adhoc_context_serves_tls() -> None:
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    assert _handshake(_tls.generate_adhoc_ssl_context(), client, "localhost") == b"PING"


def test_devcert_verifies_for_its_host(tmp_path: Path) -> None:
    cert_file, key_file = _tls.make_ssl_devcert(str(tmp_path / "dev"), host="localhost")
    client = ssl.create_default_context(cafile=cert_file)
    server = _tls.load_ssl_context(cert_file, key_file)
    assert _handshake(server, client, "localhost") == b"PING"


# --- missing cryptography --------------------------------------------------------------


@pytest.fixture
def no_cryptography(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``cryptography`` import fail, as when the extra is not installed."""
    for name in list(sys.modules):
        if name == "cryptography" or name.startswith("cryptography."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "cryptography", None)


@pytest.mark.parametrize(
    "call",
    [
        lambda tmp: _tls.generate_adhoc_ssl_pair(),
        lambda tmp: _tls.generate_adhoc_ssl_context(),
        lambda tmp: _tls.make_ssl_devcert(str(tmp / "dev")),
    ],
    ids=["pair", "context", "devcert"],
)
def test_missing_cryptography_names_the_extra(
    no_cryptography: None, tmp_path: Path, call: object
) -> None:
    with pytest.raises(TypeError) as exc_info:
        call(tmp_path)  # type: ignore[operator]
    message = str(exc_info.value)
    assert message.startswith("Using ad-hoc certificates requires the cryptography library.")
    assert "pip install 'fastserve[tls]'" in message
    assert exc_info.value.__cause__ is None and exc_info.value.__suppress_context__
    assert list(tmp_path.iterdir()) == []


def test_tls_module_imports_without_cryptography(no_cryptography: None) -> None:
    """The lazy import: loading the module (and non-generating helpers) needs no cryptography."""
    import importlib.util

    spec = importlib.util.find_spec("fastserve._tls")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.is_ssl_error(ssl.SSLError()) is True


# --- is_ssl_error ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ssl.SSLError(1, "bad"), True),
        (ssl.SSLEOFError(8, "eof"), True),
        (ssl.SSLCertVerificationError(1, "cert"), True),
        (OSError("plain"), False),
        (ValueError("x"), False),
    ],
    ids=["SSLError", "SSLEOFError", "SSLCertVerificationError", "OSError", "ValueError"],
)
def test_is_ssl_error_explicit(error: BaseException, expected: bool) -> None:
    assert _tls.is_ssl_error(error) is expected


def test_is_ssl_error_current_exception() -> None:
    try:
        raise ssl.SSLZeroReturnError(6, "closed")
    except Exception:
        assert _tls.is_ssl_error() is True
    try:
        raise KeyError("x")
    except Exception:
        assert _tls.is_ssl_error() is False


def test_is_ssl_error_outside_except() -> None:
    assert _tls.is_ssl_error() is False


def test_connection_dropped_errors() -> None:
    assert _tls.connection_dropped_errors == (ConnectionError, socket.timeout, ssl.SSLEOFError)


# --- a TLS ClientHello on a plain-HTTP port -----------------------------------------


def test_real_client_hello_is_refused_by_the_parser_at_its_first_byte(
    parser_impl: ModuleType,
) -> None:
    """What a real ``ssl`` client sends first gets 400 at once (the record type
    0x16 of RFC 8446 §5.1 is not a token character), without a TLS helper."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    hello = outgoing.read()
    assert raises_three_ways(parser_impl, hello, errors.InvalidMethodError) == 1


def test_signature_is_sha256_rsa() -> None:
    cert, key = _tls.generate_adhoc_ssl_pair()
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert isinstance(key, rsa.RSAPrivateKey)
