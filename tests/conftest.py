"""Shared fixtures: real speech made with espeak-ng, and a tiny HuBERT built from a config."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf


def _need(program: str) -> None:
    if shutil.which(program) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is required in CI (make test installs it)")
        pytest.skip(f"{program} not installed (make test installs it)")


def speak(text: str, path: Path, voice: str = "en") -> Path:
    """Synthesise real speech to a wav file with espeak-ng (22.05 kHz, as espeak writes it)."""
    _need("espeak-ng")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    return speak("The committee approved the budget for the new library on Tuesday.", tmp_path_factory.mktemp("speech") / "budget.wav")


@pytest.fixture(scope="session")
def tiny_hubert_dir(tmp_path_factory) -> Path:
    """A random-weight HuBERT saved as safetensors: exercises the real HF loading path offline."""
    from transformers import HubertConfig, HubertModel

    cfg = HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16, 16, 16, 16, 16, 16), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
    )
    d = tmp_path_factory.mktemp("tiny-hubert")
    import torch

    torch.manual_seed(0)
    HubertModel(cfg).save_pretrained(d, safe_serialization=True)
    return d


@pytest.fixture
def tone() -> np.ndarray:
    t = np.arange(16000, dtype=np.float32) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.fixture(scope="session")
def say():
    """The espeak-ng synthesiser as a fixture: say(text, path, voice="en") -> path."""
    return speak


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A clasp-tiny-shaped model with a random head, saved like a real one (behaviour tests
    that do not depend on retrieval quality use it; the shipped weights have their own tests)."""
    from clasp_cli.config import ModelConfig
    from clasp_cli.registry import create_model

    cfg = ModelConfig.load(Path(__file__).parents[1] / "clasp_cli/models/clasp-tiny/config.json")
    cfg.name = "test-random"
    d = tmp_path_factory.mktemp("model") / "test-random"
    create_model(cfg, device="cpu", seed=0).save(d)
    return d


EXAMPLES = Path(__file__).parents[1] / "examples" / "archive"


@pytest.fixture(scope="session")
def shipped_model():
    from clasp_cli.registry import load_model

    return load_model(device="cpu")


@pytest.fixture(scope="session")
def examples_index(tmp_path_factory, shipped_model) -> Path:
    """examples/archive indexed once with the shipped model (a few seconds), shared by every test that only reads it."""
    from clasp_cli.indexer import index_paths

    d = tmp_path_factory.mktemp("examples-index") / "index"
    index_paths([EXAMPLES], d, model=shipped_model)
    return d


@pytest.fixture(scope="session")
def examples_transcribed(tmp_path_factory, shipped_model) -> Path:
    """examples/archive indexed the way `clasp index` does by default: with transcripts."""
    from clasp_cli.indexer import index_paths

    d = tmp_path_factory.mktemp("examples-transcribed") / "index"
    index_paths([EXAMPLES], d, model=shipped_model, transcribe=None)
    return d


class ServerProcess:
    """`clasp serve` in a subprocess on a free loopback port. Ready once it prints its URL."""

    def __init__(self, index: Path, *args: str, timeout: float = 60.0) -> None:
        import queue
        import re
        import sys
        import threading
        import time

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "clasp_cli", "serve", "--index", str(index), "--port", "0", "--device", "cpu", *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.log: list[str] = []
        lines: queue.Queue = queue.Queue()

        def read() -> None:
            for line in self.proc.stderr:
                self.log.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        try:
            while True:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                if line is None:
                    raise RuntimeError("clasp serve exited before it was ready:\n" + "".join(self.log))
                found = re.search(r"http://\S+/", line)
                if found:
                    self.url = found.group(0)
                    return
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def served(examples_index):
    """One `clasp serve` over the examples index for the whole session: its base URL."""
    server = ServerProcess(examples_index)
    yield server.url
    server.stop()


@pytest.fixture
def start_server():
    """start_server(index_dir) -> base URL of a fresh `clasp serve`; each is stopped when the test ends."""
    servers: list[ServerProcess] = []

    def start(index: Path, *args: str) -> str:
        servers.append(ServerProcess(index, *args))
        return servers[-1].url

    yield start
    for s in servers:
        s.stop()


# Four short recordings in the formats archives hold most; indexing tests share them.
SENTENCES = {
    "weather.wav": "Tomorrow will be sunny in the morning with light rain in the evening.",
    "budget.flac": "The council approved the budget for the new public library on Tuesday.",
    "football.ogg": "The football match ended in a draw after a long period of extra time.",
    "garden.wav": "Remember to water the tomato plants in the garden every second day.",
}


@pytest.fixture(scope="session")
def model(model_dir):
    from clasp_cli.registry import load_model

    return load_model(model_dir, device="cpu")


@pytest.fixture(scope="session")
def recordings(tmp_path_factory, say):
    src = tmp_path_factory.mktemp("src")
    for name, text in SENTENCES.items():
        wav = say(text + " " + text, src / (Path(name).stem + ".tmp.wav"))
        x, sr = sf.read(wav, dtype="float32")
        sf.write(src / name, x, sr)
        wav.unlink()
    return src


@pytest.fixture
def archive(tmp_path, recordings):
    d = tmp_path / "archive"
    shutil.copytree(recordings, d)
    return d


class ReadOnly:
    """Makes paths read-only the way a shared archive is: a read-only mount where that is possible.

    Root ignores file modes, so as root each path gets a read-only bind mount of itself; other
    users get the file modes taken away.
    """

    def __init__(self) -> None:
        self.mounts: list[Path] = []
        self.chmods: list[tuple[Path, int]] = []

    def __call__(self, path: Path) -> None:
        if os.geteuid() != 0:
            self.chmods.append((path, path.stat().st_mode))
            path.chmod(0o555 if path.is_dir() else 0o444)
            return
        bind = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True, text=True)
        if bind.returncode != 0:
            pytest.skip(f"running as root and bind mounts are not allowed here ({bind.stderr.strip()})")
        self.mounts.append(path)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path), str(path)], check=True)

    def undo(self) -> None:
        for p in reversed(self.mounts):
            subprocess.run(["umount", str(p)], check=True)
        for p, mode in reversed(self.chmods):
            p.chmod(mode)


@pytest.fixture
def read_only():
    ro = ReadOnly()
    yield ro
    ro.undo()


def drop_languages(db) -> None:
    """Undo migrations 9 and 8 (speakers), 7 (e5 transcript vectors) and 6 (recordings' and windows'
    languages) on an open sqlite3 connection, so a test can turn an index into what an older
    clasp wrote before lowering its user_version."""
    for table in ("passage_voices", "turns", "diarized", "voices", "speakers"):
        db.execute(f"DROP TABLE IF EXISTS {table}")
    db.execute("DROP TRIGGER IF EXISTS transcripts_au_vector_e5")
    db.execute("DROP TABLE IF EXISTS transcript_vectors_e5")
    db.execute("DROP INDEX IF EXISTS files_language")
    db.execute("ALTER TABLE files DROP COLUMN language")
    if db.execute("SELECT 1 FROM sqlite_master WHERE name='transcripts'").fetchone():
        db.execute("ALTER TABLE transcripts DROP COLUMN language")


def ctrl_c_reaches_it() -> None:
    """preexec_fn for a child that a test stops with SIGINT: a suite started in the background
    (`make test &`, nohup) runs with SIGINT ignored, the child inherits that, and Python keeps an
    inherited ignore, so Ctrl-C would never reach it. A user's terminal does not do this."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
