"""Deployment addresses: parsed in one place and checked at the command line before any socket."""

import pytest

from cli_run import run
from mpsl.deploy.address import Address, is_wildcard, local_ip_toward, parse_address, parse_host
from mpsl.deploy.transport import ZmqTransport
from mpsl.errors import ConfigError

LISTEN = "expected tcp://HOST:PORT with PORT 1..65535 or *, e.g. tcp://0.0.0.0:5555; got"
CONNECT = "expected tcp://HOST:PORT with PORT 1..65535, e.g. tcp://10.0.0.1:5555; got"


@pytest.mark.parametrize(
    ("text", "listening", "address"),
    [
        ("tcp://10.0.0.1:5555", False, Address("10.0.0.1", 5555)),
        ("tcp://server-1.example.org:1", False, Address("server-1.example.org", 1)),
        ("tcp://127.0.0.1:65535", True, Address("127.0.0.1", 65535)),
        ("tcp://0.0.0.0:*", True, Address("0.0.0.0", None)),
        ("tcp://*:5555", True, Address("*", 5555)),
        ("tcp://eth0:5555", True, Address("eth0", 5555)),
        ("tcp://[::1]:5555", False, Address("[::1]", 5555)),
    ],
)
def test_good_addresses_parse(text, listening, address):
    assert parse_address(text, "--x", listening=listening) == address


@pytest.mark.parametrize(
    ("text", "listening", "problem"),
    [
        ("tcp://0.0.0.0:99999", True, "port '99999' is not in 1..65535"),
        ("tcp://0.0.0.0:65536", True, "port '65536' is not in 1..65535"),
        ("tcp://0.0.0.0:0", True, "port '0' is not in 1..65535"),
        ("tcp://0.0.0.0:-1", True, "port '-1' is not in 1..65535"),
        ("tcp://0.0.0.0:５５５５", True, "port '５５５５' is not in 1..65535"),
        ("tcp://0.0.0.0:", True, "port '' is not in 1..65535"),
        ("tcp://10.0.0.1:*", False, "port '*' is not in 1..65535 (* is for --listen)"),
        ("0.0.0.0:5555", True, "it does not start with tcp://"),
        ("udp://0.0.0.0:5555", True, "it does not start with tcp://"),
        ("tcp://0.0.0.0", True, "no :PORT"),
        ("tcp://:5555", True, "'' is no host name or IP address"),
        ("tcp://a b:5555", True, "'a b' is no host name or IP address"),
        ("tcp://*:5555", False, "'*' is no host name or IP address"),
    ],
)
def test_bad_addresses_name_the_option_the_value_and_the_problem(text, listening, problem):
    with pytest.raises(ConfigError) as err:
        parse_address(text, "--listen", listening=listening)
    expected = LISTEN if listening else CONNECT
    assert str(err.value) == f"field '--listen': {expected} '{text}': {problem}"


def test_advertise_is_a_bare_host():
    assert parse_host("10.0.0.3", "--advertise") == "10.0.0.3"
    assert parse_host("edge.example.org", "--advertise") == "edge.example.org"
    for bad in ("tcp://10.0.0.3:5555", "10.0.0.3:5555", "", "a/b"):
        with pytest.raises(ConfigError) as err:
            parse_host(bad, "--advertise")
        assert str(err.value).startswith("field '--advertise': expected a host name or IP address")
        assert str(err.value).endswith(f"; got '{bad}'")


def test_wildcard_and_route_read_the_address_with_the_one_parser():
    assert is_wildcard("tcp://0.0.0.0:*") and is_wildcard("tcp://*:5555")
    assert not is_wildcard("tcp://127.0.0.1:*")
    assert local_ip_toward("tcp://127.0.0.1:5555") == "127.0.0.1"
    with pytest.raises(ConfigError, match=r"field '--listen': .* got 'tcp://0.0.0.0:99999'"):
        is_wildcard("tcp://0.0.0.0:99999")
    with pytest.raises(ConfigError, match=r"field '--coordinator': .* got '127.0.0.1:5555'"):
        local_ip_toward("127.0.0.1:5555")


class Opened(Exception):
    """A socket was about to open."""


@pytest.fixture
def no_sockets(monkeypatch):
    def refuse(*args, **kwargs):
        raise Opened

    monkeypatch.setattr(ZmqTransport, "__init__", refuse)


MEMBER = ["--insecure", "--coordinator", "tcp://127.0.0.1:5555"]
COMMANDS = {
    "coordinator": ["coordinator", "--insecure"],
    "compute-node": ["compute-node", "--name", "node1", *MEMBER],
    "aggregator": ["aggregator", *MEMBER],
    "data-owner": ["data-owner", "--name", "owner1", *MEMBER],
}


BAD = [
    ("--listen", "tcp://0.0.0.0:99999", "port '99999' is not in 1..65535"),
    ("--listen", "0.0.0.0:5555", "it does not start with tcp://"),
    ("--advertise", "10.0.0.1:5555", ""),
    ("--coordinator", "tcp://10.0.0.1:70000", "port '70000' is not in 1..65535"),
    ("--coordinator", "10.0.0.1:5555", "it does not start with tcp://"),
]


@pytest.mark.parametrize(
    ("command", "option", "value", "problem"),
    [
        (command, *bad)
        for command in sorted(COMMANDS)
        for bad in BAD
        if not (command == "coordinator" and bad[0] == "--coordinator")
    ],
)
def test_every_deploy_command_refuses_a_bad_address_before_any_socket(
    command, option, value, problem, no_sockets, monkeypatch, capsys
):
    code, _, err = run([*COMMANDS[command], option, value], monkeypatch, capsys)
    text = " ".join(err.split())
    assert code == 2 and text.startswith(f"error: field '{option}': expected ")
    assert f"got '{value}'" in text and problem in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_good_addresses_reach_the_transport(command, no_sockets, monkeypatch, capsys):
    with pytest.raises(Opened):
        run(
            [*COMMANDS[command], "--listen", "tcp://0.0.0.0:*", "--advertise", "10.0.0.3"],
            monkeypatch,
            capsys,
        )


def test_a_compute_node_refuses_an_observed_round_below_one(no_sockets, monkeypatch, capsys):
    args = [*COMMANDS["compute-node"], "--observe", "obs", "--observe-round", "0"]
    code, _, err = run(args, monkeypatch, capsys)
    assert code == 2 and "observe_round" in err and "got 0" in err
