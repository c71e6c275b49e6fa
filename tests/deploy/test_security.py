"""Encryption and authentication: unknown keys are rejected and logged, nobody speaks for another."""

import logging

import pytest
import zmq

from mpsl.deploy.keys import create_keys, load_credentials
from mpsl.deploy.transport import ZmqTransport
from mpsl.deploy.wire import encode
from mpsl.errors import ConfigError, TransportTimeout
from mpsl.runtime.messages import Kind, Message


def client(keys, directory, name, server):
    creds = load_credentials(keys / directory, name)
    t = ZmqTransport(name, credentials=creds)
    t.add_route("node1", server.address, server.public_key)
    return t


def test_a_member_with_a_valid_key_gets_through(keys, server):
    owner = client(keys, "keys", "owner1", server)
    owner.send("node1", Message(Kind.ROUND_DONE, "owner1"))
    assert server.recv("node1", timeout=5).sender == "owner1"
    owner.close()


def test_an_unauthorized_key_is_rejected_and_logged(keys, server, caplog):
    stranger = client(keys, "stranger", "owner1", server)
    with caplog.at_level(logging.WARNING, logger="mpsl.deploy"):
        stranger.send("node1", Message(Kind.ROUND_DONE, "owner1"))
        with pytest.raises(TransportTimeout):
            server.recv("node1", timeout=1.5)
    assert "rejected a connection with unknown CURVE key" in caplog.text
    assert stranger.public_key in caplog.text
    stranger.close()


def test_a_peer_without_encryption_is_not_heard(server):
    ctx = zmq.Context()
    plain = ctx.socket(zmq.DEALER)
    plain.connect(server.address)
    plain.send_multipart(encode(Message(Kind.ROUND_DONE, "owner1")), copy=False)
    with pytest.raises(TransportTimeout):
        server.recv("node1", timeout=1.0)
    plain.close(linger=0)
    ctx.term()


def test_a_member_cannot_speak_for_another(keys, server):
    owner2 = client(keys, "keys", "owner2", server)
    owner2.send("node1", Message(Kind.ACTIVATION, "owner1", owner=0))
    with pytest.raises(TransportTimeout):
        server.recv("node1", timeout=1.0)
    assert any("claims to come from 'owner1'" in r and "'owner2'" in r for r in server.rejected)
    owner2.close()


def test_secure_routes_need_the_peers_public_key(server):
    with pytest.raises(Exception, match="no public key"):
        server.add_route("owner1", "tcp://127.0.0.1:1")


def test_missing_or_foreign_key_files_are_named(tmp_path, keys):
    with pytest.raises(ConfigError, match=r"node9\.key_secret not found"):
        load_credentials(keys / "keys", "node9")
    with pytest.raises(ConfigError, match=r"lacks owner1\.key"):
        (tmp_path / "mixed" / "public").mkdir(parents=True)
        for f in (keys / "stranger").glob("*.key_secret"):
            (tmp_path / "mixed" / f.name).write_bytes(f.read_bytes())
        load_credentials(tmp_path / "mixed", "owner1")
    with pytest.raises(ConfigError, match="exists"):
        create_keys(keys / "keys", ["node1"])


def test_keys_command_makes_a_deployment(tmp_path):
    from typer.testing import CliRunner

    from mpsl.cli import app

    res = CliRunner().invoke(
        app, ["keys", "--out", str(tmp_path / "k"), "--compute-nodes", "2", "--data-owners", "2"]
    )
    assert res.exit_code == 0, res.output
    names = sorted(p.stem for p in (tmp_path / "k" / "public").glob("*.key"))
    assert names == ["aggregator", "coordinator", "node1", "node2", "owner1", "owner2"]
    secret = tmp_path / "k" / "owner1.key_secret"
    assert secret.stat().st_mode & 0o077 == 0  # only its owner may read a secret key
    creds = load_credentials(tmp_path / "k", "owner1")
    assert creds.public_key_of("node2") in creds.authorized


def test_role_commands_need_keys_or_an_explicit_insecure(tmp_path):
    from typer.testing import CliRunner

    from mpsl.cli import app

    runner = CliRunner()
    res = runner.invoke(
        app, ["compute-node", "--name", "node1", "--coordinator", "tcp://127.0.0.1:1"]
    )
    assert isinstance(res.exception, ConfigError) and "--insecure" in str(res.exception)
    res = runner.invoke(app, ["coordinator", "--keys", str(tmp_path), "--insecure"])
    assert isinstance(res.exception, ConfigError) and "exclude each other" in str(res.exception)
    res = runner.invoke(
        app,
        [
            "data-owner",
            "--name",
            "owner1",
            "--coordinator",
            "tcp://127.0.0.1:1",
            "--keys",
            str(tmp_path),
        ],
    )
    assert isinstance(res.exception, ConfigError) and "owner1.key_secret not found" in str(
        res.exception
    )
