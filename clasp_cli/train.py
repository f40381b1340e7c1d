"""Contrastive training of the CLASP head on cached frozen-encoder features.

Flow: manifest -> (cached) speech frames + log-mel + text embeddings -> head trained with
symmetric InfoNCE (or Huber, LASP) -> early stopping on validation MRR -> model directory.
Checkpoints at every epoch end make a killed run resume where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import AudioError, ManifestError, ModelError, UsageError
from .feature_cache import FeatureCache, file_key, namespace, text_key
from .manifest import Utterance, read_manifest
from .metrics import RetrievalScores, retrieval_scores
from .model import AudioFeatures, ClaspModel

Event = Callable[..., None]
MAX_TRAIN_SECONDS = 30.0
MIN_CALIBRATION = 20  # validation utterances: half become the bank, the rest are scored


@dataclass
class TrainConfig:
    manifest: str | list[str]  # one manifest or several (e.g. English + other languages + passages)
    val: str | list[str]
    out: str
    base: str = "clasp-tiny"  # registry name or config.json the head architecture starts from
    fusion: str | None = None
    pooling: str | None = None
    use_spectrogram: bool | None = None
    norm: str | None = None
    frame_downsample: int | None = None
    speech_encoder: str | None = None  # override the base config's frozen speech encoder
    loss: str = "infonce"
    learnable_temperature: bool = False
    epochs: int = 40  # length of the learning-rate schedule
    stop_after: int | None = None  # end after this many epochs even if the schedule is longer
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    patience: int = 5
    seed: int = 0
    augment: bool = False
    limit: int | None = None  # use only the first N training utterances (quick runs)
    cache: str | None = None
    device: str = "auto"
    resume: bool = True
    calibrate: bool = True  # fit match-probability scores and the default --min-score on validation
    # Start from a trained model's weights (registry name or directory) instead of a random head;
    # its architecture is taken whole, so the architecture overrides above must stay unset.
    init: str | None = None
    negatives: str = "batch"  # batch (CLIP's in-batch negatives) | bank (every training text, every step)
    positives: str = "own"  # own | translations: an utterance's translations count as right answers too
    target: str = "own"  # own | mean: regress/contrast toward the mean of the text and its translations
    cosine_weight: float = 0.0  # weight of the 1 - cosine regression term added to the loss


@dataclass
class TrainResult:
    out: Path
    best_epoch: int
    best: dict
    epochs_run: int
    seconds: float
    history: list[dict] = field(default_factory=list)


# -- features -------------------------------------------------------------------------------

def _noop(*_a, **_k) -> None:
    pass


def featurize(
    model: ClaspModel,
    utterances: Sequence[Utterance],
    root: Path,
    cache_root: Path,
    batch_size: int = 32,
    on_event: Event = _noop,
) -> tuple[list[AudioFeatures], list[int]]:
    """Frozen-encoder features for each utterance, from the cache or computed and cached.

    Returns the features and the indices of the utterances they belong to (unreadable audio
    is reported through on_event("skip") and left out).
    """
    from .audio import load_audio

    hc = model.config.head
    cache = FeatureCache(cache_root, namespace("audio", model.config.speech_encoder, f"mel{hc.mel_bins if hc.use_spectrogram else 0}"))
    keys: list[str | None] = []
    for u in utterances:
        try:
            keys.append(file_key(u.audio_path(root)))
        except OSError as e:
            on_event("skip", id=u.id, reason=f"{u.audio_path(root)}: {e.strerror or e}")
            keys.append(None)
    todo = [i for i, k in enumerate(keys) if k is not None and k not in cache]
    on_event("featurize_start", total=len(utterances), todo=len(todo))
    pending: dict[str, dict[str, np.ndarray]] = {}
    for s in range(0, len(todo), batch_size):
        idx, waves = [], []
        for i in todo[s : s + batch_size]:
            try:
                waves.append(load_audio(utterances[i].audio_path(root), model.config.sample_rate, max_seconds=MAX_TRAIN_SECONDS))
                idx.append(i)
            except AudioError as e:
                on_event("skip", id=utterances[i].id, reason=str(e))
                keys[i] = None
        for i, f in zip(idx, model.audio_features(waves)):
            pending[keys[i]] = {"frames": f.frames, **({"mel": f.mel} if f.mel is not None else {})}
        if len(pending) >= 512:
            cache.put(pending)
            pending = {}
        on_event("featurize_advance", n=len(todo[s : s + batch_size]))
    cache.put(pending)
    got = cache.get(k for k in keys if k is not None)
    feats, kept = [], []
    for i, k in enumerate(keys):
        if k is not None and k in got:
            feats.append(AudioFeatures(got[k]["frames"], got[k].get("mel")))
            kept.append(i)
    return feats, kept


def text_targets(model: ClaspModel, texts: Sequence[str], cache_root: Path) -> np.ndarray:
    cache = FeatureCache(cache_root, namespace("text", model.config.text_encoder))
    keys = [text_key(t) for t in texts]
    missing = sorted({k: t for k, t in zip(keys, texts) if k not in cache}.items())
    for s in range(0, len(missing), 4096):
        part = missing[s : s + 4096]
        emb = model.embed_text([t for _, t in part])
        cache.put({k: {"e": e} for (k, _), e in zip(part, emb)})
    got = cache.get(keys)
    out = np.stack([got[k]["e"] for k in keys]).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _norm_text(t: str) -> str:
    return " ".join(t.casefold().split())


def _text_bank(
    model: ClaspModel, utts: Sequence[Utterance], with_translations: bool, cache_root: Path,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every distinct training text (and translation, when asked) embedded once: (bank, for each
    utterance the bank rows that are right answers for it)."""
    rows: dict[str, int] = {}
    texts: list[str] = []

    def row(t: str) -> int:
        k = _norm_text(t)
        if k not in rows:
            rows[k] = len(texts)
            texts.append(t)
        return rows[k]

    positives = []
    for u in utts:
        own = [row(u.text)]
        if with_translations:
            own += [row(t) for t in u.translations.values() if t and t.strip()]
        positives.append(np.array(sorted(set(own)), dtype=np.int64))
    return text_targets(model, texts, cache_root), positives


def _mean_targets(model: ClaspModel, utts: Sequence[Utterance], own: np.ndarray, cache_root: Path) -> np.ndarray:
    """Each utterance's target as the normalised mean of its text's and its translations'
    embeddings: a point between the languages, so no language's query is favoured."""
    pairs = [(k, t) for k, u in enumerate(utts) for t in u.translations.values() if t and t.strip()]
    out = own.astype(np.float32).copy()
    if pairs:
        emb = text_targets(model, [t for _, t in pairs], cache_root)
        np.add.at(out, np.array([k for k, _ in pairs]), emb)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


# -- evaluation -------------------------------------------------------------------------------

def unique_by_text(utterances: Sequence[Utterance]) -> list[int]:
    """One utterance per sentence, so every text query has exactly one right recording."""
    seen, keep = set(), []
    for i, u in enumerate(utterances):
        t = u.text.strip().lower()
        if t not in seen:
            seen.add(t)
            keep.append(i)
    return keep


def evaluate_embeddings(speech: np.ndarray, text: np.ndarray) -> RetrievalScores:
    """Text -> recording retrieval (the product's direction): each text query ranks all recordings."""
    return retrieval_scores(text @ speech.T)


def evaluate_manifest(
    model: ClaspModel, manifest: str | Path, cache_root: Path | None = None, on_event: Event = _noop, nonsense: int = 0,
) -> dict:
    """Text -> recording retrieval on a held-out manifest: each utterance's own text as the query
    against every recording, and each translated query language (from `translations`) against the
    same candidates. The own-text row is "en" for an English manifest, else "native" (so the
    English translations of foreign speech keep the "en" row), with one row per spoken language
    under "native:<lang>". With `nonsense` > 0, also "calibration": how the scores a user sees
    sit against the model's default --min-score, with that many nonsense queries."""
    from .metrics import retrieval_scores
    from .paths import cache_dir

    cache_root = Path(cache_root) if cache_root else cache_dir() / "features"
    utts = read_manifest(manifest)
    utts = [utts[i] for i in unique_by_text(utts)]
    feats, kept = featurize(model, utts, Path(manifest).resolve().parent, cache_root, on_event=on_event)
    utts = [utts[i] for i in kept]
    speech = model.embed_features(feats)
    own = text_targets(model, [u.text for u in utts], cache_root)
    spoken = sorted({u.lang for u in utts})
    key = "en" if spoken == ["en"] else "native"
    out = {"candidates": len(utts), key: evaluate_embeddings(speech, own).as_dict()}
    if key == "native":
        for lang in spoken:
            rows = [i for i, u in enumerate(utts) if u.lang == lang]
            out[f"native:{lang}"] = retrieval_scores(own[rows] @ speech.T, np.array(rows)).as_dict()
    langs = sorted({lang for u in utts for lang in u.translations})
    translated = {}
    for lang in langs:
        rows = [i for i, u in enumerate(utts) if u.translations.get(lang)]
        queries = text_targets(model, [utts[i].translations[lang] for i in rows], cache_root)
        out[lang] = retrieval_scores(queries @ speech.T, np.array(rows)).as_dict()
        translated[lang] = (queries, speech, np.array(rows))
    if nonsense:
        from .benchmark.scoring import calibration_check
        from .calibration import nonsense_queries

        junk = model.embed_text(nonsense_queries(nonsense, seed=1))
        check = calibration_check(model, speech, own, junk, translated)
        if key != "en":
            check["native"] = check.pop("en")
        out["calibration"] = check
    return out


# -- training loop ----------------------------------------------------------------------------

def _lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _augment(f: AudioFeatures, rng: np.random.Generator) -> AudioFeatures:
    """Feature-level augmentation (features are cached, audio is not re-encoded)."""
    frames = f.frames
    if frames.shape[0] > 10:
        keep = rng.random(frames.shape[0]) > rng.uniform(0.0, 0.15)
        keep[0] = True
        frames = frames[keep]
    # The spread in float32: a float16 std of large encoder frames overflows, and the noise became NaN.
    scale = float(frames.std(dtype=np.float32)) or 1.0
    frames = (frames + rng.normal(0, 0.05 * scale, frames.shape)).astype(f.frames.dtype)
    mel = f.mel
    if mel is not None:
        mel = mel.copy()
        b = int(rng.integers(0, max(1, mel.shape[0] // 8)))
        s = int(rng.integers(0, mel.shape[0] - b + 1))
        mel[s : s + b] = 0
    return AudioFeatures(frames, mel)


def _bucketed_batches(lengths: np.ndarray, batch_size: int, steps: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random batches of similar length: padding to the longest item costs less compute.

    Shuffle, sort within windows of 50 batches, cut, then shuffle the batch order, so every
    batch is still a random draw of sentences (InfoNCE negatives stay varied).
    """
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    batches = []
    for s in range(0, len(order), window):
        w = order[s : s + window]
        w = w[np.argsort(lengths[w], kind="stable")]
        batches += [w[i : i + batch_size] for i in range(0, len(w) - batch_size + 1, batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))][:steps]


def _save_checkpoint(dirpath: Path, head, optim, state: dict) -> None:
    from safetensors.torch import save_file

    dirpath.mkdir(parents=True, exist_ok=True)
    tensors = {f"head.{k}": v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    osd = optim.state_dict()
    for pid, st in osd["state"].items():
        for name, v in st.items():
            tensors[f"optim.{pid}.{name}"] = v.detach().cpu().contiguous().reshape(v.shape)
    tmp = dirpath / ".checkpoint.tmp"
    save_file(tensors, str(tmp))
    state = {**state, "param_groups": osd["param_groups"]}
    tmp_state = dirpath / ".state.json.tmp"
    tmp_state.write_text(json.dumps(state))
    # Tensors first, then the state that points at them: a crash between the two renames
    # leaves the previous state, which the newer tensors still satisfy (same shapes).
    os.replace(tmp, dirpath / "checkpoint.safetensors")
    os.replace(tmp_state, dirpath / "state.json")


def _load_checkpoint(dirpath: Path, head, optim) -> dict:
    from safetensors.torch import load_file

    state = json.loads((dirpath / "state.json").read_text())
    tensors = load_file(str(dirpath / "checkpoint.safetensors"))
    head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("head.")})
    ostate: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            ostate.setdefault(int(pid), {})[name] = v
    optim.load_state_dict({"state": ostate, "param_groups": state["param_groups"]})
    for g in optim.param_groups:
        g.setdefault("lr", 0.0)
    return state


NEGATIVES = ("batch", "bank")
POSITIVES = ("own", "translations")
TARGETS = ("own", "mean")
_ARCHITECTURE = ("fusion", "pooling", "use_spectrogram", "norm", "frame_downsample", "speech_encoder")


def _check(cfg: TrainConfig) -> None:
    for name, allowed in (("negatives", NEGATIVES), ("positives", POSITIVES), ("target", TARGETS)):
        if getattr(cfg, name) not in allowed:
            raise UsageError(f"unknown {name} {getattr(cfg, name)!r}; choose one of {', '.join(allowed)}")
    if cfg.negatives == "bank" and cfg.loss != "infonce":
        raise UsageError("--negatives bank works with --loss infonce")
    if cfg.positives == "translations" and cfg.negatives != "bank":
        raise UsageError("--positives translations needs --negatives bank (the bank holds the translations)")
    if cfg.cosine_weight < 0:
        raise UsageError(f"--cosine-weight must be at least 0 (got {cfg.cosine_weight})")
    if cfg.init:
        given = [n for n in _ARCHITECTURE if getattr(cfg, n) is not None]
        if given:
            raise UsageError(f"--init takes the model's architecture whole; leave out {', '.join('--' + n.replace('_', '-') for n in given)}")


def build_config(cfg: TrainConfig):
    from .config import ModelConfig
    from .registry import resolve_model_dir

    if cfg.init:
        base = ModelConfig.load(resolve_model_dir(cfg.init) / "config.json")
    else:
        p = Path(cfg.base)
        base = ModelConfig.load(p if p.is_file() else resolve_model_dir(cfg.base) / "config.json")
    if cfg.fusion:
        base.head.fusion = cfg.fusion
    if cfg.pooling:
        base.head.pooling = cfg.pooling
    if cfg.use_spectrogram is not None:
        base.head.use_spectrogram = cfg.use_spectrogram
    if cfg.norm:
        base.head.norm = cfg.norm
    if cfg.frame_downsample:
        base.head.frame_downsample = cfg.frame_downsample
    if cfg.speech_encoder and cfg.speech_encoder != base.speech_encoder:
        from .encoders.speech import build_speech_encoder

        base.speech_encoder = cfg.speech_encoder
        base.head.speech_dim = build_speech_encoder(cfg.speech_encoder, device="cpu").dim
    base.head.learnable_temperature = cfg.learnable_temperature
    # The sigmoid loss learns a bias beside the scale; together they calibrate scores.
    base.head.score = "sigmoid" if cfg.loss == "sigmoid" else "cosine"
    if cfg.loss == "sigmoid":
        base.head.learnable_temperature = True
    base.head.__post_init__()
    base.name = Path(cfg.out).name
    base.training = {}
    base.versions = {}
    base.calibration = {}  # fitted anew for every trained head
    return base


def train(cfg: TrainConfig, on_event: Event = _noop) -> TrainResult:
    """Train a head; returns where the best model was written and its validation scores."""
    from .extras import require

    require("train", "clasp train")
    import torch

    from .loss import LOSSES, bank_nce, cosine_gap, huber, info_nce, sigmoid_pairs, text_to_speech
    from .model import collate
    from .paths import cache_dir
    from .registry import create_model

    if cfg.loss not in LOSSES:
        raise UsageError(f"unknown loss {cfg.loss!r}; choose one of {', '.join(LOSSES)}")
    _check(cfg)
    t0 = time.perf_counter()
    out = Path(cfg.out)
    ckpt = out / "checkpoint"
    cache_root = Path(cfg.cache) if cfg.cache else cache_dir() / "features"
    model_cfg = build_config(cfg)
    model = create_model(model_cfg, device=cfg.device, seed=cfg.seed)
    if cfg.init:
        from .model import WEIGHTS, load_head_weights
        from .registry import resolve_model_dir

        load_head_weights(model.head, resolve_model_dir(cfg.init) / WEIGHTS)
    device = model.device

    train_utts, tr_feats, tr_idx = _featurize_manifests(model, _as_list(cfg.manifest), cache_root, on_event, cfg.limit)
    val_utts, va_feats, va_idx = _featurize_manifests(model, _as_list(cfg.val), cache_root, on_event, None, unique=True)
    if len(tr_feats) < 2 or len(va_feats) < 2:
        raise ManifestError("training needs at least 2 training and 2 validation utterances")
    train_texts = [train_utts[i].text for i in tr_idx]
    tr_text = text_targets(model, train_texts, cache_root)
    if cfg.target == "mean":
        tr_text = _mean_targets(model, [train_utts[i] for i in tr_idx], tr_text, cache_root)
    bank = positives = None
    if cfg.negatives == "bank":
        bank, positives = _text_bank(model, [train_utts[i] for i in tr_idx], cfg.positives == "translations", cache_root)
        bank = torch.from_numpy(bank).to(model.device)
    va_text = text_targets(model, [val_utts[i].text for i in va_idx], cache_root)
    _, groups = np.unique([t.strip().lower() for t in train_texts], return_inverse=True)

    from .model import head_inputs

    tr_feats = head_inputs(tr_feats, model_cfg.head.frame_downsample)  # once, not every step
    lengths = np.array([f.frames.shape[0] for f in tr_feats])
    head = model.head
    head.train()
    params = [p for p in head.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(tr_feats) // cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    state = {"epoch": 0, "step": 0, "best_mrr": -1.0, "best_epoch": 0, "bad_epochs": 0, "history": [], "config": asdict(cfg)}
    if cfg.resume and (ckpt / "state.json").exists():
        state = _load_checkpoint(ckpt, head, optim)
        on_event("resumed", epoch=state["epoch"])
    on_event("train_start", n_train=len(tr_feats), n_val=len(va_feats), epochs=cfg.epochs, steps_per_epoch=steps_per_epoch)

    last_epoch = min(cfg.epochs, cfg.stop_after or cfg.epochs)
    while state["epoch"] < last_epoch and state["bad_epochs"] < cfg.patience:
        epoch = state["epoch"]
        rng = np.random.default_rng(cfg.seed * 1000 + epoch)
        torch.manual_seed(cfg.seed * 1000 + epoch)
        head.train()
        losses = []
        for idx in _bucketed_batches(lengths, cfg.batch_size, steps_per_epoch, rng):
            batch = [_augment(tr_feats[i], rng) if cfg.augment else tr_feats[i] for i in idx]
            for g in optim.param_groups:
                g["lr"] = _lr_at(state["step"], total_steps, cfg)
            speech = head(*collate(batch, device, model_cfg.head.mel_multiple))
            text = torch.from_numpy(tr_text[idx]).to(device)
            if cfg.loss == "infonce" and bank is not None:
                mask = torch.zeros((len(idx), bank.shape[0]), dtype=torch.bool, device=device)
                for j, i in enumerate(idx):
                    mask[j, positives[i]] = True
                loss = 0.5 * (bank_nce(speech, bank, mask, head.logit_scale)
                              + text_to_speech(speech, text, head.logit_scale, torch.from_numpy(groups[idx]).to(device)))
            elif cfg.loss == "infonce":
                loss = info_nce(speech, text, head.logit_scale, torch.from_numpy(groups[idx]).to(device))
            elif cfg.loss == "sigmoid":
                loss = sigmoid_pairs(speech, text, head.logit_scale, head.logit_bias, torch.from_numpy(groups[idx]).to(device))
            else:
                loss = huber(speech, text)
            if cfg.cosine_weight:
                loss = loss + cfg.cosine_weight * cosine_gap(speech, text)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            optim.step()
            state["step"] += 1
            losses.append(loss.item())
            on_event("step", epoch=epoch, loss=losses[-1])
        head.eval()
        scores = evaluate_embeddings(model.embed_features(va_feats), va_text)
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), **scores.as_dict(), "seconds": round(time.perf_counter() - t0, 1)}
        state["history"].append(row)
        state["epoch"] = epoch + 1
        if scores.mrr > state["best_mrr"]:
            state.update(best_mrr=scores.mrr, best_epoch=epoch + 1, bad_epochs=0, best=row)
            model.config.training = _provenance(cfg, len(tr_feats), row)
            model.save(out)
        else:
            state["bad_epochs"] += 1
        _save_checkpoint(ckpt, head, optim, state)
        on_event("epoch", **row, best=state["best_epoch"] == epoch + 1)
    (out / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in state["history"]))
    if cfg.calibrate and (out / "model.safetensors").exists():
        if len(va_feats) >= MIN_CALIBRATION:
            try:
                extra, extra_to = translated_queries(model, val_utts, va_idx, cache_root)
                calibrate_model(out, va_feats, np.vstack([va_text, extra]), device=device, seed=cfg.seed, on_event=on_event,
                                targets=np.concatenate([np.arange(len(va_text)), extra_to]))
            except ModelError as e:  # the trained head is still a model; its scores stay cosines
                on_event("calibration_skipped", reason=str(e))
        else:
            on_event("calibration_skipped", reason=f"{len(va_feats)} validation utterances; calibration needs {MIN_CALIBRATION}")
    return TrainResult(out, state["best_epoch"], state.get("best", {}), state["epoch"], time.perf_counter() - t0, state["history"])


def calibrate_model(
    model_dir: Path, feats: Sequence[AudioFeatures], text: np.ndarray, device: str = "cpu", seed: int = 0,
    n_nonsense: int = 600, on_event: Event = _noop, targets: np.ndarray | None = None,
) -> dict:
    """Fit the best checkpoint's score calibration on validation features and write it into the model.

    text[k] is said in feats[targets[k]] (default: feats[k]). Nonsense queries use their own seed,
    so a benchmark's nonsense set (another seed) is unseen."""
    from .calibration import fit_calibration, nonsense_queries
    from .registry import load_model

    best = load_model(model_dir, device=device)
    speech = best.embed_features(feats)
    junk = best.embed_text(nonsense_queries(n_nonsense, seed=1000 + seed))
    cal, report = fit_calibration(speech, text, junk, seed=seed, targets=targets)
    best.calibrator = cal
    best.config.training = {**best.config.training, "calibration": report}
    best.save(model_dir)
    on_event("calibrated", **report)
    return report


def translated_queries(model: ClaspModel, utts: Sequence[Utterance], idx: Sequence[int], cache_root: Path) -> tuple[np.ndarray, np.ndarray]:
    """Each kept utterance's translations as extra queries for the recording (cross-lingual
    positives for calibration): (embedded queries, index into idx of their recording)."""
    pairs = [(k, t) for k, i in enumerate(idx) for t in utts[i].translations.values() if t.strip()]
    if not pairs:
        return np.zeros((0, model.dim), dtype=np.float32), np.zeros(0, dtype=np.int64)
    return text_targets(model, [t for _, t in pairs], cache_root), np.array([k for k, _ in pairs])


def calibrate_on_manifests(
    model_dir: str | Path, val: str | list[str], cache: str | None = None, device: str = "auto", seed: int = 0,
    on_event: Event = _noop,
) -> dict:
    """Fit (or refit) a trained model's score calibration on validation manifests, in place."""
    from .paths import cache_dir
    from .registry import load_model

    cache_root = Path(cache) if cache else cache_dir() / "features"
    model = load_model(model_dir, device=device)
    utts, feats, idx = _featurize_manifests(model, _as_list(val), cache_root, on_event, None, unique=True)
    if len(feats) < MIN_CALIBRATION:
        raise ManifestError(f"calibration needs at least {MIN_CALIBRATION} validation utterances (got {len(feats)})")
    text = text_targets(model, [utts[i].text for i in idx], cache_root)
    extra, extra_to = translated_queries(model, utts, idx, cache_root)
    return calibrate_model(Path(model.path), feats, np.vstack([text, extra]), device=model.device, seed=seed,
                           on_event=on_event, targets=np.concatenate([np.arange(len(text)), extra_to]))


def _as_list(m: str | list[str]) -> list[str]:
    return [m] if isinstance(m, (str, Path)) else list(m)


def _featurize_manifests(
    model: ClaspModel, manifests: list[str], cache_root: Path, on_event: Event, limit: int | None, unique: bool = False,
) -> tuple[list[Utterance], list[AudioFeatures], list[int]]:
    """Utterances of several manifests (each resolving audio against its own folder) and their features."""
    utts: list[Utterance] = []
    feats: list[AudioFeatures] = []
    kept: list[int] = []
    for m in manifests:
        us = read_manifest(m)
        if unique:
            us = [us[i] for i in unique_by_text(us)]
        if limit:
            us = us[: max(0, limit - len(utts))]
        f, k = featurize(model, us, Path(m).resolve().parent, cache_root, on_event=on_event)
        kept += [len(utts) + i for i in k]
        utts += us
        feats += f
    return utts, feats, kept


def _provenance(cfg: TrainConfig, n_train: int, best: dict) -> dict:
    return {
        "train_manifest": ",".join(os.path.basename(m) for m in _as_list(cfg.manifest)),
        "val_manifest": ",".join(os.path.basename(m) for m in _as_list(cfg.val)),
        "n_train": n_train,
        "loss": cfg.loss,
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "lr": cfg.lr,
        "seed": cfg.seed,
        "augment": cfg.augment,
        **({"init": cfg.init} if cfg.init else {}),
        **({k: getattr(cfg, k) for k in ("negatives", "positives", "target", "cosine_weight")
            if getattr(cfg, k) != getattr(TrainConfig, k)}),
        "best_epoch": best["epoch"],
        "val": {k: best[k] for k in ("n", "hits@1", "mrr", "meanr")},
    }
