"""A self-signed certificate for trying the server over https on a LAN or a test host.

    python -m server.selfsigned --host myhost.lan --host 192.168.1.20 --out certs/
    python -m server --host 0.0.0.0 --tls-cert certs/cert.pem --tls-key certs/key.pem

Browsers warn about a self-signed certificate once (accept it, or import cert.pem into the browser's trust
store); for a host others use, get a real certificate (e.g. Let's Encrypt) or use the compose proxy, which does.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from options import new_parser


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_certificate(hosts: list[str], days: int = 365) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) of a self-signed server certificate naming every host (DNS or IP)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # a little clock skew between hosts
        .not_valid_after(now + datetime.timedelta(days=days))
        # Browsers only look at the subject alternative names, never the common name.
        .add_extension(x509.SubjectAlternativeName([_alt_name(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def write_certificate(hosts: list[str], out: Path, days: int = 365) -> tuple[Path, Path]:
    cert_pem, key_pem = make_certificate(hosts, days)
    out.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = out / "cert.pem", out / "key.pem"
    cert_path.write_bytes(cert_pem)
    # The key is readable by its owner only (a shared host's other users must not read it).
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as key_file:
        key_file.write(key_pem)
    return cert_path, key_path


def main(argv: list[str] | None = None) -> None:
    parser = new_parser("python -m server.selfsigned", __doc__)
    parser.add_argument("--host", action="append", metavar="NAME_OR_IP",
                        help="a host name or IP address browsers use to reach the server; repeat for several "
                             "(default: localhost, 127.0.0.1)")
    parser.add_argument("--out", type=Path, default=Path("certs"), help="folder for cert.pem and key.pem")
    parser.add_argument("--days", type=int, default=365, help="validity in days")
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days: must be >= 1")
    hosts = args.host or ["localhost", "127.0.0.1"]
    cert_path, key_path = write_certificate(hosts, args.out, args.days)
    print(f"wrote {cert_path} and {key_path} for {', '.join(hosts)}; start the server with\n"
          f"  python -m server --host 0.0.0.0 --tls-cert {cert_path} --tls-key {key_path}")


if __name__ == "__main__":
    main()
