# Every target sets up what it needs on a fresh machine: the .venv, the CPU torch wheel,
# the package, and the Debian packages its commands call.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
# Programs the tests and dataset builder call: TTS engines, the public-domain texts, and a
# browser (with its WebDriver) for the end-to-end test of `clasp serve`'s page.
APT_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
  festvox-italp16k festvox-itapc16k festvox-suopuhe-lj festvox-suopuhe-mv festvox-ru \
  fortunes fortunes-min bible-kjv fortunes-de fortunes-es fortunes-it fortunes-ru chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: test test-all demo sysdeps venv kokoro kokoro-voices dataset-kokoro dataset-heldout dataset-kokoro-prompts bench-decode dataset dataset-ml dataset-asterisk dataset-real passages train-default train-base train-tiny clean

venv: $(STAMP)

# The core package alone (no torch): what `pip install clasp-cli` gives a user, and all the demo needs.
CORE_STAMP := $(VENV)/.installed-core
$(CORE_STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e .
	touch $(CORE_STAMP)

# Everything the tests and the training/dataset targets use: serve, hf, plots, dev.
$(STAMP): $(CORE_STAMP)
	# The CPU wheel first: with it installed, `torch>=2.1` below pulls nothing (no multi-GB CUDA build).
	$(VENV)/bin/pip install -q $(TORCH)
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

test: venv sysdeps
	$(PY) -m pytest -q

test-all: venv sysdeps
	$(PY) -m pytest -q -m "slow or not slow"

# The demo reads committed recordings (decoders come with the Python wheels): no Debian packages.
demo: $(CORE_STAMP)
	$(PY) examples/demo.py

# Kokoro's natural voices for `clasp dataset synth --voices kokoro`: the extra, and the voice
# tensors of npm kokoro-js 1.2.1 where the voice registry looks for them (CLASP_KOKORO_VOICES).
KOKORO_VOICES := $(or $(CLASP_KOKORO_VOICES),$(or $(CLASP_CACHE),$(HOME)/.cache/clasp)/kokoro-voices)
kokoro: venv kokoro-voices
	$(VENV)/bin/pip install -q -e '.[kokoro]'

kokoro-voices:
	@if [ ! -f "$(KOKORO_VOICES)/af_heart.bin" ]; then \
	  tmp=$$(mktemp -d) && (cd $$tmp && npm pack -q kokoro-js@1.2.1 >/dev/null && tar xzf kokoro-js-1.2.1.tgz) && \
	  mkdir -p "$(KOKORO_VOICES)" && cp $$tmp/package/voices/*.bin "$(KOKORO_VOICES)/" && rm -rf $$tmp; \
	fi

# The training corpus: 22,400 utterances (>= 20,000 train) (train/val/test by sentence and voice) + a multilingual test set.
DATA := data/synth
dataset: venv sysdeps
	$(VENV)/bin/clasp dataset synth --out $(DATA) --n 22400 --jobs 2 --seed 0

# Non-English speech for the multilingual model: 9 languages from gettext catalogues and fortunes-<lang>.
# Babble noise here (the English corpus has white noise), so training hears both.
DATA_ML := data/synth-ml
dataset-ml: venv sysdeps
	$(VENV)/bin/clasp dataset synth --out $(DATA_ML) --langs all --n 10000 --jobs 2 --seed 0 --noise babble

# English validation speech in Kokoro's natural voices, which no shipped model has heard: 300 short
# UI messages (benchmarks/prompt_texts.py; no meaning the test splits hold) spoken by 24 voices, four
# more held out for a later test split. Fusion choices see there the near-neighbour prompts where
# the speech vector trails Whisper. About 6 minutes on 2 cores; resumes where it stopped.
dataset-kokoro-prompts: kokoro
	$(PY) benchmarks/prompt_texts.py --out data/prompts-en.txt
	$(VENV)/bin/clasp dataset synth --out data/kokoro-prompts-en --text data/prompts-en.txt --voices kokoro \
	  --test-voices kokoro:af_heart,kokoro:am_michael,kokoro:bf_emma,kokoro:bm_george --n 6000 --jobs 2 --seed 0 --splits val

# Natural voices for the next model: Kokoro English (4 speakers held out for test), Kokoro
# es/fr/it/pt (one speaker per language held out; French has only one, so it is test-only) and
# Japanese (gettext messages; one of five speakers held out), with
# babble noise, rooms, codecs, a telephone line and speed perturbation drawn per utterance. Never
# a sentence of the synthetic test splits or of the Asterisk prompts in train or val. About 15 h of
# audio at 0.35-0.4x real time per core: built in KOKORO_CHUNKS sittings, English and the other
# languages taking turns; each sitting writes usable manifests and a rerun resumes where it stopped.
KOKORO_CHUNKS := 4
KOKORO_AUG := --noise babble --phone 0.3 --speed 0.2 --jobs 2 --seed 0
KOKORO_HELD = --exclude data/synth/test.jsonl --exclude data/synth/test_multilingual.jsonl \
  $(foreach l,$(ASTERISK_LANGS),--exclude data/asterisk/$(l).jsonl)
KOKORO_EN_TEST := kokoro:af_heart,kokoro:am_michael,kokoro:bf_emma,kokoro:bm_george
KOKORO_ML_TEST := kokoro:em_santa,kokoro:ff_siwis,kokoro:im_nicola,kokoro:pm_santa
dataset-kokoro: kokoro dataset-heldout dataset-asterisk
	for k in $$(seq 1 $(KOKORO_CHUNKS)); do \
	  $(VENV)/bin/clasp dataset synth --out data/kokoro-en --voices kokoro --test-voices $(KOKORO_EN_TEST) --no-multilingual \
	    --n 8000 $(KOKORO_AUG) $(KOKORO_HELD) --chunk $$k/$(KOKORO_CHUNKS) && \
	  $(VENV)/bin/clasp dataset synth --out data/kokoro-ml --langs es,fr,it,pt --voices kokoro --test-voices $(KOKORO_ML_TEST) \
	    --n 4000 $(KOKORO_AUG) $(KOKORO_HELD) --chunk $$k/$(KOKORO_CHUNKS) && \
	  $(VENV)/bin/clasp dataset synth --out data/kokoro-ja --langs ja --voices kokoro --test-voices kokoro:jf_nezumi \
	    --n 1500 $(KOKORO_AUG) $(KOKORO_HELD) --chunk $$k/$(KOKORO_CHUNKS) || exit 1; \
	done

# The synthetic corpus's held-out splits alone (about 6 minutes): what benchmarks and --exclude read.
dataset-heldout: venv sysdeps
	$(VENV)/bin/clasp dataset synth --out $(DATA) --n 22400 --jobs 2 --seed 0 --splits val,test,test_multilingual

# Real recorded speech for validation (it, ru) and benchmarks (en, fr, es): Debian's Asterisk phone
# prompts, one voice artist per language, 8 kHz (CC-BY-SA-3.0 / CC-BY-3.0). Never trained on.
ASTERISK_LANGS := en fr es it ru
dataset-asterisk: venv
	mkdir -p data/asterisk-debs data/asterisk
	cd data/asterisk-debs && for l in $(ASTERISK_LANGS); do \
	  ls asterisk-core-sounds-$${l}_*.deb >/dev/null 2>&1 || apt-get download -q asterisk-core-sounds-$$l asterisk-core-sounds-$$l-wav; done
	for f in data/asterisk-debs/*.deb; do dpkg-deb -x $$f data/asterisk-root; done
	for l in $(ASTERISK_LANGS); do $(VENV)/bin/clasp dataset import asterisk data/asterisk-root --lang $$l --out data/asterisk/$$l.jsonl; done

# Real voices to train on (model v4): Fish Fillets' Czech voice acting (Debian fillets-ng-data and
# fillets-ng-data-cs, GPL; its reserved levels are never read) and the festvox-ru recordings (one
# speaker reading Russian; festvox-ru's licence notice is in /usr/share/doc/festvox-ru/copyright),
# and augmented copies of their training lines.
dataset-real: venv sysdeps
	mkdir -p data/fillets-debs data/fillets data/festvox-ru
	cd data/fillets-debs && (ls fillets-ng-data_*.deb >/dev/null 2>&1 || apt-get download -q fillets-ng-data fillets-ng-data-cs)
	for f in data/fillets-debs/*.deb; do dpkg-deb -x $$f data/fillets-root; done
	for s in train val; do \
	  $(VENV)/bin/clasp dataset import fillets data/fillets-root --split $$s --out data/fillets/$$s.jsonl; \
	  $(VENV)/bin/clasp dataset import festvox-ru /usr/share/festival/voices/russian --split $$s --out data/festvox-ru/$$s.jsonl; done
	# Two augmented copies of every training line (phone line, babble, room, codec, speed).
	for m in fillets festvox-ru; do $(VENV)/bin/clasp dataset augment data/$$m/train.jsonl --out data/$$m-aug --copies 2; done

# Passage samples: 2-4 training utterances of one voice joined with pauses (what an index window holds).
PASSAGES := data/passages-train
passages: dataset
	$(VENV)/bin/clasp dataset passages -m $(DATA)/train.jsonl --out $(PASSAGES) --n 4000 --seed 0

# The fast English clasp-tiny, rebuilt from nothing: the corpus above, then the head.
TRAIN_ARGS := --fusion gating --pooling attention --epochs 15 --stop-after 6 --patience 3 --seed 0
train-tiny: dataset
	$(VENV)/bin/clasp train -m $(DATA)/train.jsonl --val $(DATA)/val.jsonl -o clasp_cli/models/clasp-tiny $(TRAIN_ARGS) --no-resume

# The multilingual clasp-base, from nothing: both corpora, the passage samples, then the head
# (whisper-base frames averaged in pairs, attention pooling, LayerNorm MLP, InfoNCE) and its score
# calibration, on every English and non-English training utterance and 800 passage samples. On 2
# cores whisper-base features run at about 47x real time (about 57 min for the 45 h), then 12
# epochs take about 25 min. Every stage resumes: finished audio is kept, features are cached by
# content, training checkpoints each epoch.
BASE_ARGS := --pooling attention --frame-downsample 2 --norm layer --no-spectrogram --augment --epochs 12 --patience 4 --batch-size 256 --seed 0
train-base: dataset dataset-ml passages
	head -n 800 $(PASSAGES)/passages.jsonl > $(PASSAGES)/passages-800.jsonl
	$(VENV)/bin/clasp train -c clasp-base -m $(DATA)/train.jsonl -m $(DATA_ML)/train.jsonl -m $(PASSAGES)/passages-800.jsonl \
	  --val $(DATA)/val.jsonl --val $(DATA_ML)/val.jsonl -o runs/clasp-base $(BASE_ARGS)
	cp runs/clasp-base/config.json runs/clasp-base/model.safetensors runs/clasp-base/background.safetensors clasp_cli/models/clasp-base/

# The shipped default model (clasp_cli/defaults.py), rebuilt from nothing.
train-default: train-base

bench-decode: venv
	$(PY) benchmarks/decode_memory.py

clean:
	rm -rf $(VENV) .pytest_cache
