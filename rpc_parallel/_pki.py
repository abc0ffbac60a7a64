"""Certificates for mutual TLS: an ``Identity`` (a CA to trust, a certificate and its key), the
master's ephemeral ``Authority`` that issues one to each remote worker, and ``rp.Tls`` files read
into an identity.

``cryptography`` (tens of milliseconds to import) is loaded only when a process first makes or reads
a certificate, so that local-only programs and workers never pay for it.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import os
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ._errors import RpcParallelError

__all__ = ("SERVER_NAME", "Authority", "Identity", "ca_id", "read_pem")

# The name every certificate of an ephemeral authority carries, and the name a peer's certificate
# is verified against (``grpc.ssl_target_name_override``): a peer is authenticated by its CA, not
# by its address, which a worker chooses only when it starts.
SERVER_NAME = "rpc-parallel.invalid"


@dataclass(frozen=True)
class Identity:
    """What a process presents and trusts on mutual-TLS connections: PEM bytes of the CA whose
    certificates it accepts, its own certificate chain and private key, and the name it checks a
    server's certificate for."""

    ca: bytes
    cert: bytes
    key: bytes = field(repr=False)
    server_name: str = SERVER_NAME

    @property
    def ca_id(self) -> str:
        return ca_id(self.ca)

    def to_json(self) -> dict[str, str]:
        return {"ca": self.ca.decode(), "cert": self.cert.decode(), "key": self.key.decode(),
                "server_name": self.server_name}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> Identity:
        return cls(ca=data["ca"].encode(), cert=data["cert"].encode(), key=data["key"].encode(),
                   server_name=data.get("server_name") or SERVER_NAME)


def ca_id(ca_pem: bytes) -> str:
    """A short, stable name of a CA (its PEM's SHA-256, 16 hex digits): what a handle carries."""
    return hashlib.sha256(b"".join(ca_pem.split())).hexdigest()[:16]


def read_pem(value: str | os.PathLike[str] | bytes, what: str) -> bytes:
    """PEM bytes given as such, as PEM text, or as the path of a file holding them."""
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        data = value.encode()
    else:
        try:
            with open(value, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise RpcParallelError(f"rp.Tls: cannot read the {what} file {os.fspath(value)!r}: {exc}") from exc
    if b"-----BEGIN" not in data:
        raise RpcParallelError(f"rp.Tls: the {what} is not PEM (no '-----BEGIN' line)")
    return data


_CRYPTO: dict[str, ModuleType] = {}
_CRYPTO_LOCK = threading.Lock()


def _crypto() -> dict[str, ModuleType]:
    """``cryptography``'s modules, imported on first use (see the module docstring)."""
    with _CRYPTO_LOCK:
        if not _CRYPTO:
            for short, name in (("x509", "cryptography.x509"), ("oid", "cryptography.x509.oid"),
                                ("ec", "cryptography.hazmat.primitives.asymmetric.ec"),
                                ("hashes", "cryptography.hazmat.primitives.hashes"),
                                ("serialization", "cryptography.hazmat.primitives.serialization")):
                _CRYPTO[short] = importlib.import_module(name)
        return _CRYPTO


def name_in_cert(cert_pem: bytes) -> str:
    """The name a server presenting ``cert_pem`` is checked for: its first DNS name (else its
    common name). ``RpcParallelError`` if it has neither."""
    c = _crypto()
    cert = c["x509"].load_pem_x509_certificate(cert_pem)
    try:
        names = cert.extensions.get_extension_for_class(c["x509"].SubjectAlternativeName).value
        dns = names.get_values_for_type(c["x509"].DNSName)
        if dns:
            return str(dns[0])
    except c["x509"].ExtensionNotFound:
        pass
    common = cert.subject.get_attributes_for_oid(c["oid"].NameOID.COMMON_NAME)
    if common:
        return str(common[0].value)
    raise RpcParallelError("rp.Tls: the certificate names no DNS name and no common name to verify peers by; "
                           "pass server_name=")


class Authority:
    """An ephemeral certificate authority, made in memory by a master: its key never leaves the
    process. ``issue(name)`` makes an identity it trusts, for the master itself or one worker."""

    _VALID = datetime.timedelta(days=365)

    def __init__(self) -> None:
        c = _crypto()
        self._key: Any = c["ec"].generate_private_key(c["ec"].SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = c["x509"].Name([c["x509"].NameAttribute(c["oid"].NameOID.COMMON_NAME,
                                                          f"rpc_parallel ephemeral CA {os.getpid()}")])
        self._name = subject
        self._cert: Any = (
            c["x509"].CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self._key.public_key()).serial_number(c["x509"].random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + self._VALID)
            .add_extension(c["x509"].BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(c["x509"].KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                              content_commitment=False, key_encipherment=False,
                                              data_encipherment=False, key_agreement=False,
                                              encipher_only=False, decipher_only=False), critical=True)
            .sign(self._key, c["hashes"].SHA256()))
        self.ca = self._cert.public_bytes(c["serialization"].Encoding.PEM)
        self._lock = threading.Lock()

    def issue(self, name: str) -> Identity:
        """A new key and a certificate for ``name`` (its common name), valid for client and server
        use under ``SERVER_NAME``."""
        c = _crypto()
        x509 = c["x509"]
        key = c["ec"].generate_private_key(c["ec"].SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        eku = c["oid"].ExtendedKeyUsageOID
        with self._lock:
            cert = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(c["oid"].NameOID.COMMON_NAME, name)]))
                .issuer_name(self._name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + self._VALID)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([eku.SERVER_AUTH, eku.CLIENT_AUTH]), critical=False)
                .sign(self._key, c["hashes"].SHA256()))
        pem = c["serialization"]
        return Identity(
            ca=self.ca, cert=cert.public_bytes(pem.Encoding.PEM),
            key=key.private_bytes(pem.Encoding.PEM, pem.PrivateFormat.PKCS8, pem.NoEncryption()))
