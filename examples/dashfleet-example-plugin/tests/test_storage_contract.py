"""A storage backend's tests, the way a backend author writes them: subclass the contract suite
DashFleet ships (`dashfleet_core.testing.StorageContract`) and say where a fresh storage lives.

This package has no backend of its own, so it runs the suite against DashFleet's built-in JSON
backend; for yours, return a URL of your scheme (and, while your package is not installed, name
its module: `storage_config = {"plugins": {"modules": ["my_backend.plugin"]}}`).
"""

import pytest

from dashfleet_core.testing import StorageContract


class TestJsonBackend(StorageContract):
    @pytest.fixture
    def storage_url(self, tmp_path):
        return f"json:///{tmp_path}/fleet_state.json"
