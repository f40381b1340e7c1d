"""Build a synthetic speech corpus: sentences spoken by many offline voices, split for honest testing.

Layout of the output folder::

    train.jsonl val.jsonl test.jsonl all.jsonl   manifests (all = train + val + test)
    test_multilingual.jsonl                       non-English speech, translations {"en": ...}
    meta.jsonl                                    per utterance: rate, pitch, augmentation applied
    synth.json                                    the settings and the summary of the last run
    audio/<split>/<id>-<hash>.flac                16 kHz mono 16-bit FLAC (or .ogg: Opus, if asked)
    noise/babble-*.flac                           the babble bank (only with --noise babble)

Split rules:

* test: sentences from a held-out set (the built-in corpus' test subset, or a slice of the
  given sentences) spoken only by held-out voices. Voices are held out by *speaker*, so flite's
  slt and festival's slt HTS voice (the same recorded person) land on the same side.
* val: its own sentences, spoken by training voices.
* train: the remaining sentences, training voices only. No test sentence text (nor the English
  text behind a multilingual test sentence) and no test voice ever occurs in train or val.
* test_multilingual: non-English sentences spoken by the installed voices of their language
  (espeak-ng, plus festival's Italian, Finnish and Russian voices); those voices are then kept
  out of train too.

Everything random (which sentences go where, voice, rate, pitch, augmentation) is drawn from
``seed`` before any audio is made, so the same settings give the same corpus. File names carry a
hash of what the file holds, so a rerun reuses finished files (after checking that they decode),
re-makes damaged ones, and never mixes audio from different settings. Each file is written to a
temporary name and renamed; manifests are written atomically once, at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import ClaspError, UsageError
from ..fsutil import atomic_write_text
from ..manifest import Utterance, write_manifest
from .augment import AugmentConfig, AugmentPlan, apply_plan, draw_plan
from .sentences import Sentence
from .voices import SAMPLE_RATE, SynthesisError, Voice, VoiceUnavailableError, resolve_voices

AUDIO_FORMAT = "flac"  # default: 16 kHz mono PCM_16 FLAC, lossless, about half the size of wav
# name -> (soundfile format, subtype, file extension). Opus is about 5x smaller than FLAC but lossy.
AUDIO_FORMATS = {"flac": ("FLAC", "PCM_16", "flac"), "opus": ("OGG", "OPUS", "ogg")}
FORMAT_VERSION = 1  # bump when the rendering changes, so old files are not reused

# Held out for test by default (by speaker). Two espeak-ng voices with accents no training
# voice has, one flite voice and one festival voice, whose speakers have no other voice.
DEFAULT_TEST_VOICES = (
    "espeak:en-029+m4",
    "espeak:en-gb-x-gbclan+f1",
    "flite:rms",
    "festival:ked_diphone",
)

# Share of training utterances per engine (renormalised over the engines present). espeak-ng has
# many variants but they are all one formant synthesiser; the other engines add real timbre.
DEFAULT_ENGINE_WEIGHTS = {"espeak-ng": 0.4, "flite": 0.25, "festival": 0.15, "piper": 0.2}

BABBLE_BANK_SIZE = 12


@dataclass
class SynthConfig:
    out: Path
    sentences: list[Sentence] | None = None  # None: the built-in English corpus
    test_sentences: list[Sentence] | None = None  # None: test_subset() with the built-in corpus, else a slice of `sentences`
    multilingual: dict[str, list[Sentence]] | None = None  # None: non_english_sentences() with the built-in corpus; {}: none
    voices: str | Sequence[str | Voice] = "all"  # "all", comma list / sequence of ids, engine names or Voice objects
    test_voices: Sequence[str | Voice] | None = None  # None: DEFAULT_TEST_VOICES where selected, one per engine
    n_utterances: int | None = None  # train + val + test; None: each sentence once
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    multilingual_per_lang: int | None = None  # None: all (at most 200), or n_utterances // 100 when n is set
    seed: int = 0
    jobs: int | None = None  # worker processes; None: os.cpu_count()
    # Only these manifests (train, val, test, test_multilingual) are built, from the same plan, so
    # a benchmark's held-out splits can be made without the hours training speech takes; a later
    # full build keeps them. None: all.
    splits: tuple[str, ...] | None = None
    # (k, n): make only the first k/n of every split's plan, and write manifests of that much.
    # A corpus too long for one sitting is built as 1/n, 2/n, ... n/n: each step keeps the audio
    # of the one before (same plan, same file names), and each step's manifests can be trained on.
    chunk: tuple[int, int] | None = None
    # Texts (casefolded, whitespace-normalised) that must never be spoken in train or val: another
    # corpus's test sentences, or a benchmark's, when this corpus draws from the same text.
    exclude: frozenset[str] = frozenset()
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    engine_weights: dict[str, float] | None = None  # None: DEFAULT_ENGINE_WEIGHTS
    timeout: float | None = None  # per utterance; None: the voice's own (60 s)
    write_all: bool = True  # also write all.jsonl
    audio_format: str = AUDIO_FORMAT  # "flac" (lossless) or "opus" (OGG/Opus, ~5x smaller)


@dataclass
class SynthProgress:
    stage: str  # "planning", "babble", "synth", "manifests", "done"
    done: int = 0
    total: int = 0
    written: int = 0  # rendered in this run
    resumed: int = 0  # reused from an earlier run
    skipped: int = 0


@dataclass
class SynthSummary:
    out: str
    written: int  # utterances in the manifests (rendered now + resumed)
    synthesized: int
    resumed: int
    skipped: dict[str, int]
    by_split: dict[str, int]
    voices: list[str]  # every voice that speaks in some manifest
    test_voices: list[str]  # the held-out English voices
    hours: float
    seconds_elapsed: float
    audio_format: str = AUDIO_FORMAT
    manifests: dict[str, str] = field(default_factory=dict)
    hours_by_split: dict[str, float] = field(default_factory=dict)
    by_engine: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # a few example failure messages

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Item:
    id: str
    split: str  # train | val | test ; multilingual items have split "test" and group "test_multilingual"
    group: str  # which manifest: train | val | test | test_multilingual
    text: str
    lang: str
    domain: str
    translations: tuple[tuple[str, str], ...]
    voice: Voice
    rate: float
    pitch: float
    aug: AugmentPlan
    audio: str  # relative to the out folder

    def utterance(self, duration: float) -> Utterance:
        return Utterance(
            id=self.id, audio=self.audio, text=self.text, lang=self.lang, voice=self.voice.id,
            engine=self.voice.engine, domain=self.domain, duration=round(duration, 3), split=self.split,
            translations=dict(self.translations),
        )


# -- planning -------------------------------------------------------------------------------------


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def _clean(sentences: Sequence[Sentence], skipped: Counter, seen: set[str] | None = None) -> list[Sentence]:
    """Drop empty texts (counted) and repeats of a text already taken."""
    out = []
    seen = set() if seen is None else seen
    for s in sentences:
        if not (s.text or "").strip():
            skipped["empty text"] += 1
            continue
        k = _key(s.text)
        if k in seen:
            skipped["duplicate text"] += 1
            continue
        seen.add(k)
        out.append(s)
    return out


def _pick_test_voices(en: list[Voice], cfg: SynthConfig, rng: np.random.Generator) -> list[Voice]:
    if cfg.test_voices is not None:
        chosen = resolve_voices(list(cfg.test_voices))
    else:
        chosen = []
        speakers_by_engine: dict[str, set[str]] = {}
        for v in en:
            speakers_by_engine.setdefault(v.engine, set()).add(v.speaker_id)
        for engine, speakers in speakers_by_engine.items():
            if len(speakers) < 2:
                continue  # holding out this engine's only speaker would leave train without it
            pref = [v for v in en if v.engine == engine and v.id in DEFAULT_TEST_VOICES]
            if pref:
                chosen.extend(pref)
            else:
                cands = [v for v in en if v.engine == engine]
                chosen.append(cands[int(rng.integers(len(cands)))])
        # At least two held-out voices, as long as a training voice remains.
        rest = [v for v in en if v not in chosen]
        while len(chosen) < 2 and len(rest) > 1:
            v = rest.pop(int(rng.integers(len(rest))))
            chosen.append(v)
    held_speakers = {v.speaker_id for v in chosen}
    # Every selected voice of a held-out speaker goes to test, never to train.
    return [v for v in en if v.speaker_id in held_speakers] + [v for v in chosen if v not in en]


def _counts(n: int | None, n_pool: int, n_test_pool: int, cfg: SynthConfig, carve_test: bool) -> tuple[int, int, int]:
    """(n_test, n_val, n_train) utterances."""
    if n is None:
        n_test = n_test_pool if not carve_test else (max(1, round(n_pool * cfg.test_fraction)) if n_pool >= 3 else 0)
        left = n_pool - (n_test if carve_test else 0)
        n_val = max(1, round(left * cfg.val_fraction)) if left >= 2 and cfg.val_fraction > 0 else 0
        return n_test, n_val, left - n_val
    # Given test sentences (the translated subset) come first; the pool tops the split up.
    test_cap = max(0, n_pool + (n_test_pool if not carve_test else 0) - 2)
    n_test = min(test_cap, max(1, round(n * cfg.test_fraction))) if cfg.test_fraction > 0 else 0
    rest = n - n_test
    n_val = min(rest - 1, max(1, round(n * cfg.val_fraction))) if rest >= 2 and cfg.val_fraction > 0 else 0
    return n_test, n_val, rest - n_val


def _weights(voices: list[Voice], engine_weights: dict[str, float]) -> np.ndarray:
    per_engine = Counter(v.engine for v in voices)
    w = np.array([engine_weights.get(v.engine, 0.1) / per_engine[v.engine] for v in voices], dtype=np.float64)
    if w.sum() <= 0:
        w = np.ones(len(voices))
    return w / w.sum()


def _digest(*parts) -> str:
    h = hashlib.sha1(json.dumps(parts, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()[:10]


@dataclass
class _Plan:
    items: list[_Item]
    skipped: Counter
    test_voices: list[Voice]
    train_voices: list[Voice]
    multilingual_voices: list[Voice]
    groups: list[str]


def plan_corpus(cfg: SynthConfig) -> _Plan:
    """Decide every utterance (text, voice, rate, pitch, augmentation, file name) from the seed."""
    if cfg.audio_format not in AUDIO_FORMATS:
        raise UsageError(f"unknown audio format {cfg.audio_format!r} (choose from {', '.join(AUDIO_FORMATS)})")
    ext = AUDIO_FORMATS[cfg.audio_format][2]
    if cfg.n_utterances is not None and cfg.n_utterances < 1:
        raise UsageError(f"--n must be at least 1 (got {cfg.n_utterances})")
    for name in ("val_fraction", "test_fraction"):
        if not 0.0 <= getattr(cfg, name) < 1.0:
            raise UsageError(f"{name.replace('_', ' ')} must be in [0, 1)")
    rng = np.random.default_rng(cfg.seed)
    skipped: Counter = Counter()
    voices = resolve_voices(cfg.voices)  # before loading any text: a typo fails fast
    if cfg.test_voices is not None:
        resolve_voices(list(cfg.test_voices))

    builtin = cfg.sentences is None
    if builtin:
        from .corpus import builtin_corpus, test_subset

        sentences = list(builtin_corpus())
        test_given = list(test_subset()) if cfg.test_sentences is None else list(cfg.test_sentences)
    else:
        sentences = list(cfg.sentences or [])
        test_given = None if cfg.test_sentences is None else list(cfg.test_sentences)
    multilingual = cfg.multilingual
    if multilingual is None:
        if builtin:
            from .corpus import non_english_sentences

            multilingual = non_english_sentences()
        else:
            multilingual = {}

    # Work out the multilingual set first: its voices and its English texts are off-limits for train.
    ml_voices: list[Voice] = []
    ml_plan: list[tuple[str, Sentence]] = []
    ml_en_keys: set[str] = set()
    per_lang = cfg.multilingual_per_lang
    if per_lang is None:
        per_lang = 200 if cfg.n_utterances is None else max(2, min(200, cfg.n_utterances // 100))
    for lang in sorted(multilingual):
        sents = _clean(multilingual[lang], skipped)
        if not sents:
            continue
        lang_voices = [v for v in voices if v.lang == lang]
        if lang == "en" or not lang_voices:
            skipped[f"no voice for language {lang}"] += min(len(sents), per_lang)
            continue
        order = rng.permutation(len(sents))[:per_lang]
        for i in order:
            ml_plan.append((lang, sents[int(i)]))
            en = sents[int(i)].translations.get("en")
            if en:
                ml_en_keys.add(_key(en))
        ml_voices.extend(lang_voices)

    en_voices = [v for v in voices if v.lang == "en" and v not in ml_voices]
    # Explicit test voices may be of any language (a non-English corpus holds out its own).
    test_voices = _pick_test_voices(en_voices, cfg, rng) if len(en_voices) >= 2 or cfg.test_voices is not None else []
    if sentences or test_given:
        if len(en_voices) < 2 and any(s.lang == "en" for s in [*sentences, *(test_given or [])]):
            raise UsageError(
                "need at least two English voices (one to train on, one held out for test); "
                "see `clasp dataset synth --list-voices`"
            )
    train_voices = [v for v in voices if v not in test_voices and v not in ml_voices]
    held_speakers = {v.speaker_id for v in test_voices}
    train_voices = [v for v in train_voices if v.speaker_id not in held_speakers]
    if not train_voices and sentences:
        raise UsageError("every selected voice is held out for test; select more voices")

    # Sentences: test first, then val and train from what is left.
    seen: set[str] = set()
    carve = test_given is None
    test_pool = [] if carve else _clean(test_given, skipped, seen)
    pool = _clean(sentences, skipped, seen)  # drops texts already in the test pool
    if cfg.exclude:
        before = len(pool)
        pool = [s for s in pool if _key(s.text) not in cfg.exclude
                and not any(_key(t) in cfg.exclude for t in (s.translations or {}).values())]
        if before > len(pool):
            skipped["held out (--exclude)"] += before - len(pool)
    before = len(pool)
    pool = [s for s in pool if _key(s.text) not in ml_en_keys]
    if before > len(pool):
        skipped["held out (multilingual test)"] += before - len(pool)
    pool = [pool[int(i)] for i in rng.permutation(len(pool))]
    n_test, n_val, n_train = _counts(cfg.n_utterances, len(pool), len(test_pool), cfg, carve)
    if carve:
        test_pool, pool = pool[:n_test], pool[n_test:]
    else:
        test_pool = [test_pool[int(i)] for i in rng.permutation(len(test_pool))][:n_test]
        extra = max(0, n_test - len(test_pool))
        test_pool, pool = test_pool + pool[:extra], pool[extra:]
    val_sents, train_sents = pool[:n_val], pool[n_val:]
    if n_train > 0 and not train_sents:
        if val_sents:  # too few sentences for both: val takes one fewer
            train_sents = [val_sents.pop()]
        else:
            raise UsageError("no sentences left for the training split")

    engine_weights = dict(DEFAULT_ENGINE_WEIGHTS if cfg.engine_weights is None else cfg.engine_weights)
    items: list[_Item] = []
    aug_cfg = cfg.augment

    def make(split: str, group: str, idx: int, s: Sentence, v: Voice) -> _Item:
        rate = float(rng.uniform(*v.rate_range))
        pitch = float(rng.uniform(*v.pitch_range))
        plan = draw_plan(aug_cfg, rng)
        prefix = "mtest" if group == "test_multilingual" else split
        uid = f"{prefix}-{idx:06d}"
        digest = _digest(FORMAT_VERSION, s.text, v.id, v.engine, round(rate, 4), round(pitch, 4), plan.key())
        return _Item(
            id=uid, split=split, group=group, text=" ".join(s.text.split()), lang=s.lang, domain=s.domain,
            translations=tuple(sorted((s.translations or {}).items())), voice=v, rate=round(rate, 4),
            pitch=round(pitch, 4), aug=plan, audio=f"audio/{group}/{uid}-{digest}.{ext}",
        )

    def voices_for(lang: str, among: list[Voice]) -> list[Voice]:
        return [v for v in among if v.lang == lang]

    # test: round-robin over the held-out voices of the sentence's language.
    rr: Counter = Counter()
    for i, s in enumerate(test_pool):
        cands = voices_for(s.lang, test_voices)
        if not cands:
            skipped[f"no voice for language {s.lang}"] += 1
            continue
        v = cands[rr[s.lang] % len(cands)]
        rr[s.lang] += 1
        items.append(make("test", "test", i, s, v))

    # val and train: weighted draw over the training voices of the language.
    weight_cache: dict[str, tuple[list[Voice], np.ndarray]] = {}

    def draw_voice(lang: str) -> Voice | None:
        if lang not in weight_cache:
            cands = voices_for(lang, train_voices)
            weight_cache[lang] = (cands, _weights(cands, engine_weights) if cands else np.zeros(0))
        cands, w = weight_cache[lang]
        if not cands:
            return None
        return cands[int(rng.choice(len(cands), p=w))]

    for split, sents, count in (("val", val_sents, n_val), ("train", train_sents, n_train)):
        for i in range(count if sents else 0):
            s = sents[i % len(sents)]
            v = draw_voice(s.lang)
            if v is None:
                reason = f"no voice for language {s.lang}"
                if any(x.lang == s.lang for x in test_voices + ml_voices):
                    reason += " (its voices are held out for test)"
                skipped[reason] += 1
                continue
            items.append(make(split, split, i, s, v))

    # multilingual test: round-robin over the language's voices.
    rr = Counter()
    for i, (lang, s) in enumerate(ml_plan):
        cands = [v for v in ml_voices if v.lang == lang]
        v = cands[rr[lang] % len(cands)]
        rr[lang] += 1
        items.append(make("test", "test_multilingual", i, s, v))

    groups = ["train", "val", "test"] + (["test_multilingual"] if ml_plan else [])
    return _Plan(items, skipped, test_voices, train_voices, ml_voices, groups)


# -- the work done per utterance (in worker processes) --------------------------------------------


def _decodes(path: Path) -> float | None:
    """Duration in seconds when `path` is a complete, readable 16 kHz file; None otherwise."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as f:
            if f.samplerate != SAMPLE_RATE or f.frames <= 0:
                return None
            frames = f.frames
            data = f.read(dtype="float32")
        if len(data) != frames:
            return None
        return frames / SAMPLE_RATE
    except Exception:  # noqa: BLE001 - any failure to decode means "make it again"
        return None


_BABBLE: dict[tuple[str, ...], list[np.ndarray]] = {}


def _babble_sources(paths: tuple[str, ...]) -> list[np.ndarray]:
    if paths not in _BABBLE:
        import soundfile as sf

        _BABBLE[paths] = [sf.read(p, dtype="float32")[0] for p in paths]
    return _BABBLE[paths]


def _write_audio(path: Path, audio: np.ndarray) -> None:
    """Write to a temporary name in the same folder, then rename: never a half-written file."""
    import soundfile as sf

    fmt, subtype = next((f, st) for f, st, e in AUDIO_FORMATS.values() if path.suffix == f".{e}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        sf.write(str(tmp), audio, SAMPLE_RATE, format=fmt, subtype=subtype)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _render(item: _Item, timeout: float | None, babble: tuple[str, ...]) -> np.ndarray:
    audio = item.voice.render(item.text, item.rate, item.pitch, timeout=timeout)
    peak = float(np.max(np.abs(audio)))
    audio = audio * (0.9 / peak) if peak > 0 else audio
    aug = item.aug
    sources = _babble_sources(babble) if (aug.noise == "babble" and babble) else None
    if aug.noise == "babble" and not sources:  # no bank could be made: fall back to white noise
        aug = replace(aug, noise="white")
    return apply_plan(audio, aug, SAMPLE_RATE, sources)


def _reason(e: BaseException, item: _Item) -> str:
    eng = item.voice.engine
    if isinstance(e, SynthesisError):
        if e.kind == "empty text":
            return "empty text"
        if e.kind == "timeout":
            return f"engine timed out ({eng})"
        if e.kind == "no audio":
            return f"engine produced no audio ({eng})"
        return f"engine failed ({eng})"
    if isinstance(e, VoiceUnavailableError):
        return f"voice not available ({eng})"
    if isinstance(e, ClaspError):
        return f"error ({type(e).__name__})"
    return f"unexpected error ({type(e).__name__})"


def _work(args: tuple[_Item, str, float | None, tuple[str, ...]]) -> tuple[str, str, float, str]:
    """Make one utterance's audio unless a good copy exists: (id, status, duration, reason/message)."""
    item, out, timeout, babble = args
    path = Path(out) / item.audio
    if path.exists():
        dur = _decodes(path)
        if dur is not None:
            return item.id, "resumed", dur, ""
        path.unlink(missing_ok=True)  # half-written or damaged: make it again
    try:
        audio = _render(item, timeout, babble)
        _write_audio(path, audio)
    except Exception as e:  # noqa: BLE001 - one bad sentence must not stop a 20,000-utterance build
        return item.id, "skipped", 0.0, f"{_reason(e, item)}\t{item.id}: {e}"
    return item.id, "written", audio.size / SAMPLE_RATE, ""


def _work_batch(batch: list[tuple[_Item, str, float | None, tuple[str, ...]]]) -> list[tuple[str, str, float, str]]:
    return [_work(a) for a in batch]


def _worker_init() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:  # Ctrl-C is handled by the parent, which cancels the pool; workers just stop.
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError):
        pass


# -- the build ------------------------------------------------------------------------------------

_OURS = re.compile(r"^(train|val|test|mtest)-\d{6}-[0-9a-f]{10}\.(flac|ogg|wav)$")


def _clean_temp(out: Path) -> int:
    """Delete what an interrupted run left half-written: audio and manifest temp files."""
    n = 0
    for p in out.glob(".*.tmp"):  # ".train.jsonl.<random>.tmp" from an interrupted manifest write
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    for sub in ("audio", "noise"):
        root = out / sub
        if root.is_dir():
            for p in root.rglob(".*.tmp"):
                p.unlink(missing_ok=True)
                n += 1
    return n


def _prune_stale(out: Path, keep: set[str]) -> int:
    """Remove audio files of ours that no longer belong to the plan (a rerun with other settings)."""
    n = 0
    root = out / "audio"
    if not root.is_dir():
        return 0
    for p in root.rglob("*"):
        if p.is_file() and _OURS.match(p.name) and p.relative_to(out).as_posix() not in keep:
            p.unlink(missing_ok=True)
            n += 1
    return n


def _babble_bank(plan: _Plan, cfg: SynthConfig, out: Path, timeout: float | None) -> tuple[str, ...]:
    """A few training-voice utterances of training sentences, used as the babble noise source."""
    if not any(it.aug.noise == "babble" for it in plan.items):
        return ()
    train = [it for it in plan.items if it.group == "train"]
    if not train:
        return ()
    fast = [v for v in plan.train_voices if v.engine in ("espeak-ng", "flite") and v.lang == "en"]
    bank_voices = fast or [v for v in plan.train_voices if v.lang == "en"] or plan.train_voices
    rng = np.random.default_rng([cfg.seed, 7])
    paths: list[str] = []
    tries = 0
    while len(paths) < BABBLE_BANK_SIZE and tries < BABBLE_BANK_SIZE * 3:
        tries += 1
        it = train[int(rng.integers(len(train)))]
        v = bank_voices[int(rng.integers(len(bank_voices)))]
        path = out / "noise" / f"babble-{len(paths):02d}-{_digest(FORMAT_VERSION, it.text, v.id)}.{AUDIO_FORMAT}"
        if not (path.exists() and _decodes(path) is not None):
            try:
                audio = v.render(it.text, timeout=timeout)
            except (SynthesisError, VoiceUnavailableError):
                continue
            _write_audio(path, audio)
        paths.append(str(path))
    return tuple(paths)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _kept_meta(path: Path, rebuilt: set[str]) -> list[dict]:
    """The rows of an earlier meta.jsonl whose split this build did not make."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn line from an older, non-atomic write
        if isinstance(row, dict) and row.get("group") not in rebuilt:
            rows.append(row)
    return rows


def _chunk(items: list[_Item], k: int, n: int) -> list[_Item]:
    """The first k/n of each group's items, in plan order."""
    if not 1 <= k <= n:
        raise UsageError(f"--chunk must be K/N with 1 <= K <= N (got {k}/{n})")
    by_group: dict[str, list[_Item]] = {}
    for it in items:
        by_group.setdefault(it.group, []).append(it)
    keep = {it.id + it.group for its in by_group.values() for it in its[: -(-len(its) * k // n)]}
    return [it for it in items if it.id + it.group in keep]


def build_synthetic_corpus(
    config: SynthConfig, progress: Callable[[SynthProgress], None] | None = None
) -> SynthSummary:
    """Synthesise the corpus described by `config` into `config.out`; resumable; see the module doc."""
    t0 = time.monotonic()
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: exists and is not a folder")
    report = progress or (lambda p: None)
    report(SynthProgress("planning"))
    plan = plan_corpus(config)
    out.mkdir(parents=True, exist_ok=True)
    _clean_temp(out)

    jobs = config.jobs or os.cpu_count() or 1
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1 (got {jobs})")
    report(SynthProgress("babble", total=len(plan.items)))
    babble = _babble_bank(plan, config, out, config.timeout)  # from training speech, whichever splits are built
    if config.splits is not None:
        unknown = set(config.splits) - set(plan.groups)
        if unknown:
            raise UsageError(f"--splits: no split {', '.join(sorted(unknown))} in this corpus (it has {', '.join(plan.groups)})")
        plan.items = [it for it in plan.items if it.group in config.splits]
        plan.groups = [g for g in plan.groups if g in config.splits]
    if config.chunk is not None:
        plan.items = _chunk(plan.items, *config.chunk)

    skipped: Counter = Counter(plan.skipped)
    errors: list[str] = []
    durations: dict[str, float] = {}
    state = SynthProgress("synth", total=len(plan.items))
    report(state)
    args = [(it, str(out), config.timeout, babble) for it in plan.items]

    def take(results: list[tuple[str, str, float, str]]) -> None:
        for uid, status, dur, msg in results:
            state.done += 1
            if status == "skipped":
                reason, _, detail = msg.partition("\t")
                skipped[reason] += 1
                state.skipped += 1
                if len(errors) < 20:
                    errors.append(detail)
                continue
            durations[uid] = dur
            if status == "resumed":
                state.resumed += 1
            else:
                state.written += 1
        report(state)

    if jobs == 1 or len(args) <= 1:
        for a in args:
            take([_work(a)])
    else:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        size = max(1, min(16, len(args) // (jobs * 8)))
        batches = [args[i : i + size] for i in range(0, len(args), size)]
        ex = ProcessPoolExecutor(max_workers=min(jobs, len(batches)), mp_context=mp.get_context("spawn"),
                                 initializer=_worker_init)
        try:
            pending = {ex.submit(_work_batch, b) for b in batches}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    take(f.result())
        except BaseException:
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        ex.shutdown(wait=True)

    report(SynthProgress("manifests", state.done, state.total, state.written, state.resumed, state.skipped))
    groups: dict[str, list[Utterance]] = {g: [] for g in plan.groups}
    meta: list[dict] = []
    for it in plan.items:
        if it.id in durations:
            groups.setdefault(it.group, []).append(it.utterance(durations[it.id]))
            meta.append({"id": it.id, "group": it.group, "voice": it.voice.id, "rate": it.rate, "pitch": it.pitch,
                         "augment": it.aug.describe(), "audio": it.audio})
    manifests: dict[str, str] = {}
    for g, utts in groups.items():
        p = out / f"{g}.jsonl"
        write_manifest(p, utts)
        manifests[g] = str(p)
    if config.write_all and config.splits is None:
        p = out / "all.jsonl"
        write_manifest(p, [u for g in ("train", "val", "test") for u in groups.get(g, [])])
        manifests["all"] = str(p)
    if config.splits is not None or config.chunk is not None:
        meta = _kept_meta(out / "meta.jsonl", set(plan.groups)) + meta  # the other splits' rows stay
    _write_jsonl(out / "meta.jsonl", meta)
    if config.splits is None and config.chunk is None:  # a partial build must not take the rest's audio for stale
        _prune_stale(out, {it.audio for it in plan.items})

    written = [u for utts in groups.values() for u in utts]
    summary = SynthSummary(
        out=str(out),
        written=len(written),
        synthesized=state.written,
        resumed=state.resumed,
        skipped=dict(sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0]))),
        by_split={g: len(u) for g, u in groups.items()},
        voices=sorted({u.voice for u in written}),
        test_voices=[v.id for v in plan.test_voices],
        hours=round(sum(u.duration for u in written) / 3600, 4),
        seconds_elapsed=round(time.monotonic() - t0, 2),
        manifests=manifests,
        hours_by_split={g: round(sum(u.duration for u in utts) / 3600, 4) for g, utts in groups.items()},
        by_engine=dict(Counter(u.engine for u in written)),
        errors=errors,
        audio_format=config.audio_format,
    )
    record = {
        "settings": {
            "seed": config.seed, "n_utterances": config.n_utterances, "val_fraction": config.val_fraction,
            "test_fraction": config.test_fraction, "augment": asdict(config.augment),
            "engine_weights": config.engine_weights or DEFAULT_ENGINE_WEIGHTS,
            "train_voices": [v.id for v in plan.train_voices], "test_voices": [v.id for v in plan.test_voices],
            "multilingual_voices": [v.id for v in plan.multilingual_voices],
            "audio_format": config.audio_format, "sample_rate": SAMPLE_RATE, "format_version": FORMAT_VERSION,
        },
        "summary": summary.to_dict(),
    }
    _write_jsonl_obj(out / "synth.json", record)
    report(SynthProgress("done", state.done, state.total, state.written, state.resumed, state.skipped))
    return summary


def _write_jsonl_obj(path: Path, obj: dict) -> None:
    atomic_write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
