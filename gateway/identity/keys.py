"""The gateway's token-signing key pair (Ed25519), kept under ``var/keys``.

The private key never leaves the gateway; services read ``jwt_public.pem`` (or the JWKS endpoint).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PRIVATE_NAME = "jwt_private.pem"
PUBLIC_NAME = "jwt_public.pem"
LOCK_NAME = ".keys.lock"


@contextmanager
def _keys_lock(keys_dir: Path) -> Iterator[None]:
    """Serialise key creation between processes starting at once (gateway workers, seed, tests)."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(keys_dir / LOCK_NAME, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def ensure_keys(keys_dir: Path) -> Path:
    """Create the key pair once; later calls reuse it. Returns the private key path."""
    with _keys_lock(keys_dir):
        return _ensure_keys(keys_dir)


def _ensure_keys(keys_dir: Path) -> Path:
    private_path = keys_dir / PRIVATE_NAME
    public_path = keys_dir / PUBLIC_NAME
    if not private_path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = private_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.replace(tmp, private_path)
    if not public_path.exists():
        public_path.write_bytes(
            load_private_key(private_path)
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    return private_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def key_id(public_key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint of the OKP key: a stable ``kid``."""
    x = _b64(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"' + x + '"}'
    return _b64(hashlib.sha256(canonical.encode()).digest())


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    x = _b64(public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": key_id(public_key), "alg": "EdDSA", "use": "sig"}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def ensure_secret(keys_dir: Path, name: str, nbytes: int = 32) -> bytes:
    """A random symmetric secret kept in ``keys_dir/name`` (0600), created on first use."""
    with _keys_lock(keys_dir):
        path = keys_dir / name
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(base64.urlsafe_b64encode(secrets.token_bytes(nbytes)))
            os.replace(tmp, path)
        raw = base64.urlsafe_b64decode(path.read_bytes().strip())
    if len(raw) != nbytes:
        raise ValueError(f"{path}: expected a {nbytes}-byte secret")
    return raw
