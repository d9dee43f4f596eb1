"""Where the worker's secrets come from: the HMAC signing key and the CURVE server key.

`python -m advmoe_worker.keys DIR` writes a fresh set (signing key, CURVE key pair) into
DIR with mode 0600, for a worker reached over a network (README, Docker).

Each secret is read from the file a flag names, else from its variable, else from the
file its `..._FILE` variable names: a container takes a mounted secret or a value.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

import zmq

KEY_ENV = "ADVMOE_KEY"
KEY_FILE_ENV = "ADVMOE_KEY_FILE"
CURVE_SECRET_ENV = "ADVMOE_CURVE_SECRET_KEY"
CURVE_SECRET_FILE_ENV = "ADVMOE_CURVE_SECRET_KEY_FILE"
Z85_KEY_CHARS = 40  # a 32-byte CURVE key in Z85 text


class KeySetupError(ValueError):
    """A secret that is missing or malformed; the message says which and where to put it."""


def _read(file_arg: str | None, file_env: str, value_env: str) -> tuple[str, str]:
    """The secret's text and where it came from: the flag's file, else the variable,
    else the variable's file (so `-e ADVMOE_KEY=...` beats the image's default file)."""
    value = os.environ.get(value_env, "").strip()
    path = file_arg or (None if value else os.environ.get(file_env))
    if path:
        try:
            return Path(path).read_text().strip(), path
        except OSError as exc:
            raise KeySetupError(f"cannot read {path}: {exc.strerror}") from None
    return value, f"${value_env}"


def signing_key(key_file: str | None = None) -> bytes:
    """The HMAC key (hex): `--key-file`, else `$ADVMOE_KEY`, else `$ADVMOE_KEY_FILE`."""
    text, source = _read(key_file, KEY_FILE_ENV, KEY_ENV)
    if not text:
        raise KeySetupError(f"no signing key: set {KEY_ENV} (hex), {KEY_FILE_ENV} or pass --key-file")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeySetupError(f"the signing key in {source} must be hex") from None
    if len(key) < 16:
        raise KeySetupError(f"the signing key in {source} must be at least 16 bytes (32 hex characters)")
    return key


def curve_server_secret(secret_file: str | None = None) -> bytes | None:
    """The worker's CURVE secret key (Z85), or None when none is configured."""
    text, source = _read(secret_file, CURVE_SECRET_FILE_ENV, CURVE_SECRET_ENV)
    if not text:
        return None
    # Files written by zmq.auth.create_certificates hold `secret-key = "..."`.
    for line in text.splitlines():
        if line.strip().startswith("secret-key"):
            text = line.split("=", 1)[1].strip().strip('"')
    if len(text) != Z85_KEY_CHARS:
        raise KeySetupError(
            f"the CURVE secret key in {source} must be {Z85_KEY_CHARS} Z85 characters, got {len(text)}"
        )
    try:
        zmq.curve_public(text.encode())
    except (zmq.ZMQError, ValueError) as exc:
        raise KeySetupError(f"the CURVE secret key in {source} is not valid Z85: {exc}") from None
    return text.encode()


def curve_public(secret: bytes) -> bytes:
    """The Z85 public key that belongs to a Z85 secret key."""
    return zmq.curve_public(secret)


def write_keys(folder: Path) -> dict[str, Path]:
    """Writes `signing.key`, `server.secret` and `server.public`; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    public, secret = zmq.curve_keypair()
    files = {
        "signing.key": secrets.token_hex(32),
        "server.secret": secret.decode(),
        "server.public": public.decode(),
    }
    paths = {}
    for name, text in files.items():
        path = folder / name
        # Created 0600 from the start, so the secret is never readable by others.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
        paths[name] = path
    return paths


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m advmoe_worker.keys", description=__doc__)
    p.add_argument("folder", help="where to write signing.key, server.secret and server.public")
    args = p.parse_args(argv)
    if not zmq.has("curve"):
        sys.exit("advmoe_worker.keys: this libzmq was built without CURVE")
    paths = write_keys(Path(args.folder))
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
