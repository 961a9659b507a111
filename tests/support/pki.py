"""Generate the throwaway PKI an e2e control plane needs, as PEM files in one directory.

Invariant: every key is fresh per call and lives only in the given directory; certificates are signed
by the CA written alongside them, valid for one day, and the serving certificate names 127.0.0.1 and
localhost only.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Pki:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path  # client certificate in group system:masters: the test's own credential
    admin_key: Path
    sa_signing_key: Path  # RSA private key signing ServiceAccount tokens
    sa_public_key: Path


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _write_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@dataclass(frozen=True, slots=True)
class Issuer:
    """A CA: its name and signing key."""

    name: x509.Name
    key: ec.EllipticCurvePrivateKey


def certificate(
    issuer: Issuer,
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """`key`'s certificate for `subject`, signed by `issuer`, valid from 5 minutes ago for a day."""
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer.key, hashes.SHA256())


def leaf_extensions(
    usage: x509.ObjectIdentifier, *names: x509.GeneralName
) -> list[tuple[x509.ExtensionType, bool]]:
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (x509.ExtendedKeyUsage([usage]), False),
    ]
    if names:
        extensions.append((x509.SubjectAlternativeName(names), False))
    return extensions


def new_ca(common_name: str) -> tuple[Issuer, x509.Certificate]:
    """A fresh CA that may sign leaf certificates only (path length 0)."""
    ca = Issuer(_name(common_name), ec.generate_private_key(ec.SECP256R1()))
    usage = x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )
    constraints = x509.BasicConstraints(ca=True, path_length=0)
    return ca, certificate(ca, ca.name, ca.key, [(constraints, True), (usage, True)])


def write_pki(directory: Path) -> Pki:
    """A CA, a serving cert for 127.0.0.1, an admin client cert and a ServiceAccount key pair."""
    ca, ca_cert = new_ca("routectl-e2e-ca")
    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving_cert = certificate(
        ca,
        _name("kube-apiserver"),
        serving_key,
        leaf_extensions(
            ExtendedKeyUsageOID.SERVER_AUTH,
            x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
            x509.DNSName("localhost"),
        ),
    )
    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin_cert = certificate(
        ca,
        _name("routectl-e2e-admin", "system:masters"),
        admin_key,
        leaf_extensions(ExtendedKeyUsageOID.CLIENT_AUTH),
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_public = directory / "sa.pub"
    sa_public.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return Pki(
        ca_cert=_write_cert(ca_cert, directory / "ca.crt"),
        serving_cert=_write_cert(serving_cert, directory / "serving.crt"),
        serving_key=_write_key(serving_key, directory / "serving.key"),
        admin_cert=_write_cert(admin_cert, directory / "admin.crt"),
        admin_key=_write_key(admin_key, directory / "admin.key"),
        sa_signing_key=_write_key(sa_key, directory / "sa.key"),
        sa_public_key=sa_public,
    )
