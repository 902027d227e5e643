"""A development certificate authority and the server certificates it issues, made once
under ``<data_dir>/tls`` and reused afterwards (``sandbox run --tls``, ``make run``).

Everything is the ``cryptography`` package's: ECDSA P-256 keys, a CA valid ten years and
server certificates valid 397 days (browsers refuse longer ones), issued again when one
has less than 30 days left or does not name every host asked for. The CA is limited by
name constraints to ``localhost``, the names it was first made for and the loopback and
private address ranges: a developer who trusts it in a browser trusts it for nothing
else, even if its key leaks. Private keys are written ``0600``.

    >>> issued = server_certificate(Path("var/tls"), "platform", ["127.0.0.1", "localhost"])
    >>> issued.cert, issued.key, issued.ca   # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
CA_DAYS = 3650
SERVER_DAYS = 397
RENEW_DAYS = 30
#: The addresses the CA may issue for besides its names: loopback and private networks
#: (the platform on loopback, query workers on Docker bridges' gateways).
PERMITTED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128",
              "fc00::/7")
)  # fmt: skip

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class CertificateRefused(ValueError):
    """The development CA cannot issue for a host (rule ``tls-dev-ca-names``)."""

    rule = "tls-dev-ca-names"


@dataclass(frozen=True)
class Issued:
    """A server certificate (PEM), its key, and the CA that issued it."""

    cert: Path
    key: Path
    ca: Path


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _split(hosts: list[str]) -> tuple[list[str], list[IPAddress]]:
    names, addresses = [], []
    for host in dict.fromkeys(h.strip("[]").lower() for h in hosts if h):
        try:
            addresses.append(ipaddress.ip_address(host))
        except ValueError:
            names.append(host)
    return names, addresses


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` readable by its owner only, whole or not at all."""
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    partial.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _authority(
    directory: Path, names: list[str]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA in ``directory``, made (for ``localhost`` and ``names``) if there is none."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    made = _now()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Data sandbox (development only)"),
            x509.NameAttribute(
                NameOID.COMMON_NAME,
                f"Data sandbox development CA {socket.gethostname()[:24]} {made:%Y-%m-%d}",
            ),
        ]
    )
    permitted: list[x509.GeneralName] = [x509.DNSName("localhost")]
    permitted += [x509.DNSName(n) for n in names if n != "localhost"]
    permitted += [x509.IPAddress(n) for n in PERMITTED_NETWORKS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(made - dt.timedelta(minutes=5))
        .not_valid_after(made + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(
            x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))  # the key first: a certificate implies its key
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _permits(ca: x509.Certificate, names: list[str], addresses: list[IPAddress]) -> list[str]:
    """The hosts the CA's name constraints do not permit."""
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints).value
    subtrees = constraints.permitted_subtrees or []
    dns = [g.value for g in subtrees if isinstance(g, x509.DNSName)]
    nets = [g.value for g in subtrees if isinstance(g, x509.IPAddress)]
    outside = [n for n in names if not any(n == d or n.endswith("." + d) for d in dns)]
    outside += [str(a) for a in addresses if not any(a in net for net in nets)]
    return outside


def _still_good(
    path: Path, ca: x509.Certificate, names: list[str], addresses: list[IPAddress]
) -> bool:
    """Whether the certificate at ``path`` was issued by ``ca``, names every host and has
    more than :data:`RENEW_DAYS` left."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        cert.verify_directly_issued_by(ca)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, x509.ExtensionNotFound, x509.InvalidSignature):
        return False
    have_names = set(san.get_values_for_type(x509.DNSName))
    have_addresses = set(san.get_values_for_type(x509.IPAddress))
    left = cert.not_valid_after_utc - _now()
    return (
        set(names) <= have_names
        and set(addresses) <= have_addresses
        and left > dt.timedelta(days=RENEW_DAYS)
    )


def server_certificate(directory: Path, name: str, hosts: list[str]) -> Issued:
    """``<name>.pem`` and ``<name>-key.pem`` in ``directory``: a server certificate for
    ``hosts`` (names and IP addresses) issued by the development CA there, both made the
    first time and reused while still good. Raise :class:`CertificateRefused` for a host
    outside the CA's name constraints."""
    names, addresses = _split(hosts)
    ca, ca_key = _authority(directory, names)
    if outside := _permits(ca, names, addresses):
        raise CertificateRefused(
            f"the development CA in {directory} may not issue for {', '.join(outside)} "
            f"(rule {CertificateRefused.rule}): it was made for localhost, its first host "
            "names and private addresses; remove the directory to make a new CA, which "
            "must then be trusted again"
        )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    issued = Issued(cert=cert_path, key=key_path, ca=directory / CA_CERT)
    if key_path.exists() and _still_good(cert_path, ca, names, addresses):
        return issued
    key = ec.generate_private_key(ec.SECP256R1())
    made = _now()
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(a) for a in addresses]
    cert = (
        x509.CertificateBuilder()
        # No host in the subject: the names are in the SAN, and a common name that looks
        # like a host would be checked against the CA's name constraints as one.
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"sandbox {name}")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(made - dt.timedelta(minutes=5))
        .not_valid_after(made + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return issued


def trust_instructions(ca: Path) -> list[str]:
    """How to trust the development CA, one line each, as ``sandbox run`` prints them."""
    ca = ca.resolve()
    return [
        f"curl, Python: curl --cacert {ca} …; SSL_CERT_FILE={ca} or httpx verify=…",
        f"this machine (Debian/Ubuntu): sudo cp {ca} /usr/local/share/ca-certificates/"
        "sandbox-dev-ca.crt && sudo update-ca-certificates",
        f"Firefox: Settings → Privacy & Security → Certificates → Import {ca}",
        f"Chromium: chrome://certificate-manager → Local certificates → Custom → Import {ca}",
    ]
