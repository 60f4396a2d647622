# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# pip on this kind of machine lists extra local indexes; their "is ignored" warnings are noise.
# sed, not grep -v: it succeeds on empty output, so with pipefail a failing pip still stops make.
PIP_NOISE := sed "/is ignored: it is neither a file nor a directory/d"

export PATH := $(abspath $(VENV))/bin:$(PATH)
export HF_HUB_OFFLINE := 1
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := false
export PREFECT_HOME := $(abspath .prefect)
export MPLCONFIGDIR := $(abspath .cache/matplotlib)

.PHONY: install demo test test-fast flow nightly schedule bench bench-drift benchmark benchmark-paper-encoders benchmark-recipe clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the pinned requirements into $(VENV) (first time: several minutes)"
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | $(PIP_NOISE)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e . 2>&1 | $(PIP_NOISE)
	@touch $(STAMP)

## demo: synthesise the demo set, OCR it, validate, split, train the bag, CNN and fusion, gate, evaluate, register (dvc repro)
demo: install
	dvc repro
	@echo
	@cat reports/ablation.md reports/robustness.md
	@echo
	@echo "results:"
	@echo "  test metrics        reports/metrics.json (per model; plots reports/*.png)"
	@echo "  paper tables        reports/ablation.md, reports/robustness.md (plots reports/plots/*.png)"
	@echo "  gate                models/gate.json (metrics reports/gate_metrics.json)"
	@echo "  registered model    models:/oanet@champion in mlruns/mlflow.db, where promotion gave it one; its last event:"
	@oanet registry history 2>/dev/null | tail -n 1 | sed 's/^/                      /' \
		|| echo "                      (the registry could not be read: run oanet registry history)"
	@echo "                      (all: oanet registry history; serve the champion: oanet predict IMAGE)"
	@echo "  clean OCR table     data/clean.parquet"
	@echo "  quarantine          data/quarantine.parquet"
	@echo "  data-quality report reports/validation/index.html (one file, opens offline; text: summary.md)"
	@echo "  GX Data Docs        reports/validation/data_docs/index.html (needs network for its styles)"
	@echo "  drift report        reports/drift/test-rows/index.html (test rows vs the train rows; a night: oanet drift --data DIR)"
	@echo "  data set            data/raw: images/, labels.csv, layout.yaml (the demo's also truth.csv)"

## flow: the OCR + validation stages as a Prefect flow (temporary local server, history under .prefect/)
flow: install
	oanet flow ingest

## nightly: one nightly run now (intake from incoming/, OCR, retrain if anything is new, register)
nightly: install
	oanet nightly

## schedule: a local Prefect server on 127.0.0.1:4200 serving the nightly deployment (cron in prefect.yaml)
schedule: install
	oanet schedule

test: install browser
	ruff check .
	python -m pytest -q

test-fast: install browser
	ruff check .
	python -m pytest -q -m "not slow"

.PHONY: browser
## browser: Debian's chromium, for the tests that open the HTML reports headless and offline
## (installed only when missing, as root with apt-get; otherwise those tests skip and say how)
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium (apt-get, once) for the headless-browser report tests"; \
	    mkdir -p .cache; export DEBIAN_FRONTEND=noninteractive; \
	    { apt-get install -y -q --no-install-recommends chromium || \
	      { apt-get update -q && apt-get install -y -q --no-install-recommends chromium; }; } >.cache/apt-chromium.log 2>&1 \
	      || echo "could not install chromium (see .cache/apt-chromium.log); the browser tests will skip"; \
	  else echo "chromium is missing and this is not root with apt-get: the browser tests will skip" \
	    "(install it with: sudo apt-get install chromium)"; fi; }

## bench: OCR accuracy and throughput on the magnetic-tile benchmark (minutes)
bench: install
	python bench/ocr_accuracy.py --objects ../shared/data/magnetic-tile --n 500 --preset clean
	python bench/ocr_accuracy.py --objects ../shared/data/magnetic-tile --n 500 --preset noisy
	python bench/ocr_throughput.py --objects ../shared/data/magnetic-tile --n 200
	python bench/ocr_scaling.py --n 200
	python bench/ocr_styles.py --n 100
	python bench/ocr_verify.py --n 60

## bench-drift: the drift report on simulated incidents and 10 clean nights, read by the OCR, 3 panel styles (6 min)
bench-drift: install
	python bench/drift_incidents.py

MT := ../shared/data/magnetic-tile

## benchmark: MT-AOI (1,344 real tile photographs) built, OCR-ed, validated and evaluated with the cpu profile
benchmark: install
	python bench/mt_aoi.py --objects $(MT) --profile cpu

## benchmark-paper-encoders: the paper's AlexNet, VGG16 and ResNet18 on the same MT-AOI, at what the CPU affords
benchmark-paper-encoders: install
	python bench/mt_aoi.py --objects $(MT) --profile cpu_paper_encoders --reports reports/benchmark/mt-aoi-paper-encoders

## benchmark-recipe: the CPU image recipe, one ingredient at a time (after make benchmark)
benchmark-recipe: install
	python bench/image_recipe.py --seeds 0 1

clean:
	rm -rf data reports models .cache .prefect
