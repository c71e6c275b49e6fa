"""Fixtures of the deployment tests."""

import pytest
from deploy_helpers import ThreadDeployment, small_config

from mpsl.runtime.config import RunConfig


@pytest.fixture
def deployment(tmp_path):
    def make(config: RunConfig | None = None, **kw) -> ThreadDeployment:
        return ThreadDeployment(config or small_config(), tmp_path / "keys", **kw)

    return make
