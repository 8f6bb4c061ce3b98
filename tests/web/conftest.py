import pytest
from starlette.testclient import TestClient

from vidtoon.web.app import create_app
from vidtoon.web.store import Store


@pytest.fixture
def store(tmp_path):
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "report.html").write_text("<!doctype html><title>report</title><a href='a.mp4'>a.mp4</a>")
    made = Store(out_dir=tmp_path / "out", batch_dir=batch, limit=5 * 2**20)
    yield made
    made.close()


@pytest.fixture
def serve(store):
    """A factory: serve(backend=None) -> a TestClient on the app (lifespan run), closed after the test."""
    clients = []

    def make(backend=None):
        client = TestClient(create_app(store, backend))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)

