"""The server's TLS context (--tls-cert, --tls-key), with errors a person can act on."""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsError(Exception):
    """The certificate or key cannot be used; the message says which file and why."""


def server_ssl_context(cert: Path, key: Path) -> ssl.SSLContext:
    """An https server context for `cert` (PEM, the chain may follow the certificate) and its private `key`."""
    for path, what in ((cert, "--tls-cert"), (key, "--tls-key")):
        try:
            path.read_bytes()
        except OSError as error:  # missing, a directory, no permission: checked first for a precise message
            raise TlsError(f"{what} {path}: cannot read it ({error.strerror or error})") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as error:
        if "KEY_VALUES_MISMATCH" in str(error) or "key values mismatch" in str(error):
            raise TlsError(f"--tls-key {key} is not the private key of --tls-cert {cert}") from None
        raise TlsError(f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate and its private key") from None
    return context
