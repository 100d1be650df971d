"""A private certificate authority for local TLS: `make run TLS=1`, tests and benches.

    python -m rivulet.core.localca .run/tls          # ca.pem, server.pem, server.key, client.pem, client.key

writes (once; existing files are kept) a CA, a server certificate for `localhost`, `127.0.0.1` and
`::1` (plus any `--host`), and a client certificate for mutual TLS, all signed by the CA. Clients
trust `ca.pem`: `riva.client.Auth(uri="localhost:50051", use_ssl=True, ssl_cert=".run/tls/ca.pem")`.
Not for production: in a cluster the certificates come from cert-manager or a given Secret.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class LocalCertificates:
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    def complete(self) -> bool:
        return all(
            p.exists()
            for p in (self.ca, self.server_cert, self.server_key, self.client_cert, self.client_key)
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Rivulet local"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _leaf(
    subject: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    usage: x509.ObjectIdentifier,
    hosts: Sequence[str],
    days: int,
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def create_local_certificates(
    directory: Path, hosts: Sequence[str] = DEFAULT_HOSTS, days: int = 365, overwrite: bool = False
) -> LocalCertificates:
    """Write a CA and server + client certificates into `directory` (kept if already complete)."""
    files = LocalCertificates(Path(directory))
    if files.complete() and not overwrite:
        return files
    files.directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("Rivulet local CA")
    now = dt.datetime.now(dt.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        )
        .sign(ca_key, hashes.SHA256())
    )
    server = _leaf("rivulet server", ca_key, ca_name, ExtendedKeyUsageOID.SERVER_AUTH, list(hosts), days)
    client = _leaf("rivulet client", ca_key, ca_name, ExtendedKeyUsageOID.CLIENT_AUTH, [], days)
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for (cert_path, key_path), (cert, key) in (
        ((files.server_cert, files.server_key), server),
        ((files.client_cert, files.client_key), client),
    ):
        cert_path.write_bytes(cert)
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
    return files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", type=Path)
    parser.add_argument("--host", action="append", default=[], help="extra DNS name or IP for the server")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--overwrite", action="store_true", help="make new ones even if the files exist")
    args = parser.parse_args(argv)
    files = create_local_certificates(args.directory, [*DEFAULT_HOSTS, *args.host], args.days, args.overwrite)
    print(
        f"CA: {files.ca}\nserver: {files.server_cert} {files.server_key}\n"
        f"client: {files.client_cert} {files.client_key}"
    )


if __name__ == "__main__":
    main()
