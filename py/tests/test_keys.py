"""Where the worker's secrets come from, and the refusals when they are missing."""

import stat

import pytest
import zmq

from advmoe_worker import keys
from advmoe_worker.__main__ import main


@pytest.fixture(autouse=True)
def no_keys_in_env(monkeypatch):
    for name in (keys.KEY_ENV, keys.KEY_FILE_ENV, keys.CURVE_SECRET_ENV, keys.CURVE_SECRET_FILE_ENV):
        monkeypatch.delenv(name, raising=False)


def test_written_keys_are_private_and_read_back(tmp_path, monkeypatch):
    paths = keys.write_keys(tmp_path / "k")
    for path in paths.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    monkeypatch.setenv(keys.KEY_FILE_ENV, str(paths["signing.key"]))
    monkeypatch.setenv(keys.CURVE_SECRET_FILE_ENV, str(paths["server.secret"]))
    assert keys.signing_key() == bytes.fromhex(paths["signing.key"].read_text())
    secret = keys.curve_server_secret()
    assert keys.curve_public(secret).decode() == paths["server.public"].read_text().strip()


def test_a_value_in_the_environment_beats_the_default_file(tmp_path, monkeypatch):
    monkeypatch.setenv(keys.KEY_FILE_ENV, str(tmp_path / "absent"))
    monkeypatch.setenv(keys.KEY_ENV, "ab" * 32)
    assert keys.signing_key() == bytes.fromhex("ab" * 32)


def test_a_certificate_file_from_zmq_auth_is_accepted(tmp_path):
    import zmq.auth

    _, secret_file = zmq.auth.create_certificates(str(tmp_path), "server")
    secret = keys.curve_server_secret(secret_file)
    assert len(secret) == 40
    assert zmq.curve_public(secret) == zmq.auth.load_certificate(secret_file)[0]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no signing key"),
        ({keys.KEY_ENV: "zz"}, "must be hex"),
        ({keys.KEY_ENV: "ab"}, "at least 16 bytes"),
        ({keys.KEY_ENV: "ab" * 32, keys.CURVE_SECRET_ENV: "short"}, "40 Z85 characters"),
        ({keys.KEY_ENV: "ab" * 32}, "--allow-remote needs CURVE"),
    ],
)
def test_the_worker_refuses_to_start_without_usable_keys(monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        main(["--bind", "tcp://0.0.0.0:0", "--allow-remote"])
    assert message in str(exit_.value.code)


def test_a_non_loopback_bind_needs_allow_remote(monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, "ab" * 32)
    public, secret = zmq.curve_keypair()
    monkeypatch.setenv(keys.CURVE_SECRET_ENV, secret.decode())
    with pytest.raises(SystemExit) as exit_:
        main(["--bind", "tcp://0.0.0.0:0"])
    assert "--allow-remote" in str(exit_.value.code)
