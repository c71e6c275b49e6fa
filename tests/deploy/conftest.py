"""Fixtures of the deployment tests."""

import pytest
from deploy_helpers import ThreadDeployment, small_config

from mpsl.deploy.gate import Gate
from mpsl.deploy.keys import create_keys, load_credentials
from mpsl.deploy.transport import ZmqTransport
from mpsl.runtime.config import RunConfig


@pytest.fixture
def deployment(tmp_path):
    def make(config: RunConfig | None = None, **kw) -> ThreadDeployment:
        return ThreadDeployment(config or small_config(), tmp_path / "keys", **kw)

    return make


class AcceptAll(Gate):
    """A gate that lets every message through: the transport's own checks alone."""

    def traffic(self, msg):
        return None


@pytest.fixture
def keys(tmp_path):
    """Authorized keys in keys/, and a key pair nobody authorized in stranger/."""
    create_keys(tmp_path / "keys", ["coordinator", "node1", "owner1", "owner2"])
    create_keys(tmp_path / "stranger", ["owner1"])
    return tmp_path


@pytest.fixture
def server(keys):
    """node1's transport, listening with its key."""
    t = ZmqTransport(
        "node1", credentials=load_credentials(keys / "keys", "node1"), gate=AcceptAll()
    )
    yield t
    t.close()
