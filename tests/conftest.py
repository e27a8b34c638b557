"""Shared fixtures: hand-written messages, a small test model, an isolated environment, a
message builder and a live scan API server.

The tests never use the shipped model (it is retrained as the features change): a tiny model
is fitted once per session on the ``scan/corpus`` messages of ``tests/fixture_messages.py``
with the package's own tokenizer, so model-dependent behaviour is deterministic and
independent of the shipped artefact.
"""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixture_messages import fixture_root
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import SGDClassifier

FIXTURES = fixture_root() / "scan"
CORPUS = FIXTURES / "corpus"
TEST_MODEL_VERSION = "test-tiny-model"


def _postwise_vars() -> list[str]:
    """Every POSTWISE_* variable a Settings field reads, plus the config-file switch."""
    from postwise.core.settings import Settings

    return ["POSTWISE_CONFIG", *(f"POSTWISE_{name.upper()}" for name in Settings.model_fields)]


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """A labelled folder (ham/ spam/ phish/) of hand-written messages."""
    return CORPUS


@pytest.fixture(scope="session")
def fixture_bytes() -> Callable[[str], bytes]:
    """Raw bytes of a fixture message by its path under tests/fixtures/scan."""

    def read(name: str) -> bytes:
        return (FIXTURES / name).read_bytes()

    return read


@pytest.fixture(scope="session")
def test_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder with a tiny classifier fitted on the fixture corpus."""
    from postwise.inbound.classifier import InboundModel, hash_matrix
    from postwise.inbound.corpus import read_corpus
    from postwise.inbound.training import tokenize_corpus

    messages = list(read_corpus(CORPUS))
    tokens = tokenize_corpus(messages)
    labels = np.array([m.label for m in messages])
    counts = hash_matrix(tokens)
    tfidf = TfidfTransformer(sublinear_tf=True)
    features = tfidf.fit_transform(counts)
    estimator = SGDClassifier(loss="modified_huber", alpha=1e-3, max_iter=200, random_state=0)
    estimator.fit(features, labels)
    model = InboundModel(
        version=TEST_MODEL_VERSION,
        classes=tuple(str(c) for c in estimator.classes_),
        tfidf=tfidf,
        estimator=estimator,
        card={"version": TEST_MODEL_VERSION, "note": "fitted by the test suite"},
    )
    folder = tmp_path_factory.mktemp("model") / "inbound"
    model.save(folder)
    return folder


@pytest.fixture
def postwise_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, test_model_dir: Path
) -> Iterator[Path]:
    """A clean POSTWISE_* environment: data in tmp_path, the test model, no config file, and
    the working directory in tmp_path so no ``postwise.toml`` is picked up. Yields the data dir."""
    from postwise.core.settings import get_settings

    for name in _postwise_vars():
        monkeypatch.delenv(name, raising=False)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("POSTWISE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("POSTWISE_MODEL_PATH", str(test_model_dir))
    monkeypatch.setenv("POSTWISE_ENVIRONMENT", "test")
    monkeypatch.setenv("POSTWISE_SMTP_HOSTNAME", "postwise.test")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield data_dir
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def policy() -> Any:
    from postwise.inbound.policy import load_policy

    return load_policy()


@pytest.fixture(scope="session")
def rule_scanner(policy: Any) -> Any:
    """A scanner with the shipped policy and no model: rule symbols only, fully deterministic."""
    from postwise.inbound.scanner import Scanner

    return Scanner(policy, None)


@pytest.fixture(scope="session")
def scanner(policy: Any, test_model_dir: Path) -> Any:
    """A scanner with the shipped policy and the test model."""
    from postwise.inbound.classifier import InboundModel
    from postwise.inbound.scanner import Scanner

    return Scanner(policy, InboundModel.load(test_model_dir))


# --------------------------------------------------------------------------- message builder


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def build_message(
    *,
    text: str | None = "Hello Sam,\n\nthe minutes from Tuesday are below. Talk soon.\n",
    html: str | None = None,
    attachments: tuple[tuple[str, bytes, str], ...] = (),
    headers: dict[str, str | None] | None = None,
) -> bytes:
    """A well-formed message from example.org to example.net: by default one plain-text part
    with complete headers, so that only what a test adds produces symbols. ``attachments``
    are (filename, data, content type); a header mapped to None is left out."""
    base: dict[str, str | None] = {
        "From": "Ann Baker <ann.baker@example.org>",
        "To": "Sam Lee <sam.lee@example.net>",
        "Subject": "Minutes",
        "Date": "Tue, 03 Mar 2026 10:00:00 +0000",
        "Message-ID": "<minutes.2026-03-03@example.org>",
    }
    base.update(headers or {})
    message = EmailMessage()
    for name, value in base.items():
        if value is not None:
            message[name] = value
    if text is not None:
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
    for filename, data, content_type in attachments:
        maintype, subtype = content_type.split("/", 1)
        if maintype == "text":
            message.add_attachment(data.decode("utf-8"), subtype=subtype, filename=filename)
        else:
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


@pytest.fixture(scope="session")
def make_zip() -> Callable[[dict[str, bytes]], bytes]:
    return zip_bytes


@pytest.fixture(scope="session")
def make_message() -> Callable[..., bytes]:
    return build_message


@pytest.fixture(scope="session")
def symbols_of(rule_scanner: Any) -> Callable[[bytes], dict[str, str]]:
    """Rule symbols of a raw message, name -> evidence."""

    def run(raw: bytes) -> dict[str, str]:
        return {s.name: s.evidence for s in rule_scanner.scan(raw).symbols}

    return run


def big_message(size: int) -> bytes:
    """A message of about ``size`` bytes: a short note and one large base64 attachment."""
    head = (
        b"From: Ann Baker <ann.baker@example.org>\r\nTo: sam.lee@example.net\r\n"
        b"Subject: the raw photos\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\n"
        b"Message-ID: <photos.1@example.org>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="big"\r\n\r\n'
        b"--big\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nAll photos from the trip.\r\n"
        b"--big\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="photos.raw"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
    )
    tail = b"\r\n--big--\r\n"
    payload_len = (size - len(head) - len(tail)) * 57 // 78
    chunk = bytes(range(256)) * 4096  # 1 MiB of varied bytes, repeated
    payload = (chunk * (payload_len // len(chunk) + 1))[:payload_len]
    return head + base64.encodebytes(payload).replace(b"\n", b"\r\n") + tail


@pytest.fixture(scope="session")
def make_big_message() -> Callable[[int], bytes]:
    return big_message


# --------------------------------------------------------------------------- live API server


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    settings: Any


@pytest.fixture(scope="module")
def live_api(
    tmp_path_factory: pytest.TempPathFactory, test_model_dir: Path
) -> Iterator[LiveServer]:
    """The real app under uvicorn on 127.0.0.1 and a free port, in a background thread, with
    its data (SQLite) in a temporary folder and a small message size limit (64 KiB)."""
    import uvicorn

    from postwise.api.app import create_app
    from postwise.core.settings import Settings

    data_dir = tmp_path_factory.mktemp("api-data")
    settings = Settings(
        environment="test",
        data_dir=data_dir,
        model_path=test_model_dir,
        policy_path=None,
        database_url=None,
        max_message_bytes=64 * 1024,
        store_verdicts=True,
    )
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test API server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(base_url=f"http://127.0.0.1:{port}", settings=settings)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        if app.state.engine is not None:
            app.state.engine.dispose()
