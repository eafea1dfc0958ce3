# ssrbench for newcomers: `make run` runs the main job, `make test` runs the tests.
# Both create .venv when it is missing, install what is not installed yet, and skip what is
# (stamp files inside .venv), so they are safe to re-run. `make help` lists everything.

.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory
SHELL := /bin/sh

PYTHON ?= python3
VENV ?= .venv
# The torch / torchvision releases ssrbench is developed and tested with. For another platform or
# CUDA build: make run TORCH="torch torchvision" TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cu124"
TORCH ?= torch==2.14.1 torchvision==0.29.1
TORCH_PIP_ARGS ?=
# Empty: `pip install .` (what users and CI get, and what tests/test_installed.py checks: the built
# wheel with its bundled configs). EDITABLE=1: `pip install -e .` for working on ssrbench itself.
EDITABLE ?=
ARGS ?=
PYTEST_ARGS ?=

RUN_ARGS := --tasks inpaint,jigsaw --attacks fgsm,pgd2
# $SSRBENCH_DATA_DIR, else ../shared/data when that folder exists, else nothing (ssrbench's default,
# ~/.cache/ssrbench/data, downloaded on first use by `run`).
DATA_DIR := $(or $(SSRBENCH_DATA_DIR),$(patsubst %/.,%,$(wildcard ../shared/data/.)))

PIP = $(VENV)/bin/python -m pip --quiet --disable-pip-version-check
# A change to any of these re-installs the project: its metadata, its code, the configs bundled in the wheel.
PROJECT_SOURCES := pyproject.toml $(shell find ssrbench tasks attacks zoo -type f ! -path '*/__pycache__/*' ! -name '*.py[co]' 2>/dev/null)

# Stamps say what is installed. A setting's stamp is named after a checksum of the setting, so changing
# TORCH, TORCH_PIP_ARGS or EDITABLE re-installs, and `make -n test` shows truly what would run.
TORCH_STAMP := $(VENV)/.stamp-torch-$(shell printf '%s' '$(TORCH) $(TORCH_PIP_ARGS)' | cksum | cut -d' ' -f1)
PROJECT_STAMP := $(VENV)/.stamp-project$(if $(EDITABLE),-editable)
TEST_STAMP := $(VENV)/.stamp-test
DOCS_STAMP := $(VENV)/.stamp-docs

.PHONY: help run test format docs site-screenshot setup setup-test setup-docs check clean-venv venv figures

help:
	@echo 'ssrbench — two commands:'
	@echo '  make run     set up .venv if needed, then ssrbench run $(RUN_ARGS) (minutes: weights from the zoo; ARGS=--no-zoo trains them)'
	@echo '  make test    set up .venv with the test extra if needed, then ruff and the whole test suite (a few minutes)'
	@echo 'helpers:'
	@echo '  make setup        create .venv, install torch and ssrbench (nothing already done is redone)'
	@echo '  make setup-test   the same plus the test extra (pytest, pyautoattack, torchattacks, kornia, matplotlib, ray, robustbench)'
	@echo '  make format       apply ruff (format and lint fixes); make test checks both before the suite'
	@echo '  make docs         build the documentation site into site/ (mkdocs build --strict; the docs extra)'
	@echo '  make figures      redraw the docs figures from the committed leaderboards'
	@echo '  make site-screenshot   retake the docs screenshot of ssrbench site (its browser test, headless Chromium)'
	@echo '  make check        only check the prerequisites (python >= 3.11 with venv, make)'
	@echo '  make clean-venv   remove .venv (the next command recreates it)'
	@echo '  make -n test      show what would run (which installs, the exact commands) without running it'
	@echo 'variables:'
	@echo '  ARGS="--preset smoke"   extra options for ssrbench run (ARGS="--help" lists them)'
	@echo '  PYTEST_ARGS="-m \"not integration\""   extra options for pytest'
	@echo '  SSRBENCH_DATA_DIR=DIR   CIFAR-10 location (default ../shared/data if present, else ssrbench downloads it)'
	@echo '  PYTHON=python3.11      interpreter used to create .venv    EDITABLE=1   pip install -e .'
	@echo '  TORCH="..." TORCH_PIP_ARGS="--index-url ..."   another torch build (default $(TORCH))'
	@echo 'data dir now: $(or $(DATA_DIR),(ssrbench default))'

# Every figure of the docs, from the committed leaderboard it shows (tests check each figure's recorded hash):
# name:leaderboard:kind[:option[:option]], each option one word (--tasks=..., --attacks=...) passed to plot.
FIGURES := quick-robust-pareto:leaderboards/quick-robust.json:pareto \
	quick-sweep-eps:leaderboards/quick-sweep.json:eps:--tasks=inpaint@rev=8/255,rotation@rev=8/255 \
	quick-sweep-reverse:leaderboards/quick-sweep.json:reverse:--attacks=pgd10@eps=2/255,bpda-pgd10@eps=2/255,pgd10@eps=8/255,bpda-pgd10@eps=8/255 \
	quick-sweep-roc:leaderboards/quick-sweep.json:roc:--tasks=inpaint@rev=8/255,rotation@rev=8/255:--attacks=pgd10@eps=2/255,pgd10@eps=8/255

figures: setup-test
	@$(foreach f,$(FIGURES),$(VENV)/bin/ssrbench plot $(word 2,$(subst :, ,$(f))) --kind $(word 3,$(subst :, ,$(f))) $(wordlist 4,5,$(subst :, ,$(f))) --out docs/figures/$(word 1,$(subst :, ,$(f))).png &&) true

run: setup
	$(strip $(VENV)/bin/ssrbench run $(RUN_ARGS) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(ARGS))

# Exactly the README's test command: ruff's lint and format check (silent when the tree passes; `make format`
# applies them), then the suite; nothing is printed after pytest's summary line.
test: setup-test
	$(VENV)/bin/ruff check --quiet . && $(VENV)/bin/ruff format --check --quiet .
	$(strip $(if $(DATA_DIR),SSRBENCH_DATA_DIR=$(DATA_DIR)) $(VENV)/bin/python -m pytest -q $(PYTEST_ARGS))

# What `make test` checks first, applied: ruff's formatter and its safe lint fixes ([tool.ruff] in pyproject.toml).
format: setup-test
	$(VENV)/bin/ruff format --quiet . && $(VENV)/bin/ruff check --fix --quiet .

# The site: README's pages under docs/, a page per committed leaderboard and the CLI reference generated at
# build time (scripts/docs_pages.py, mkdocs-click). Strict: a broken link or a page left out of the nav fails.
docs: setup-docs
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/python -m mkdocs build --strict --quiet
	@echo 'site built: site/index.html (opens from file://)'

# The browser test of `ssrbench site`, keeping its screenshot as the docs' (a test checks it shows today's page).
site-screenshot: setup-test
	SSRBENCH_KEEP_SCREENSHOT=1 SSRBENCH_REQUIRE_BROWSER=1 $(VENV)/bin/python -m pytest -q tests/test_site.py -k chromium

setup: $(PROJECT_STAMP)
setup-test: $(PROJECT_STAMP) $(TEST_STAMP)
setup-docs: $(PROJECT_STAMP) $(DOCS_STAMP)

check:
	@PYTHON='$(PYTHON)' sh scripts/bootstrap.sh

# Checks the prerequisites and creates .venv when missing; reuses a working one (quietly).
venv:
	@PYTHON='$(PYTHON)' sh scripts/bootstrap.sh '$(VENV)'

$(TORCH_STAMP): | venv
	$(strip $(PIP) install $(TORCH_PIP_ARGS) $(TORCH))
	@rm -f $(VENV)/.stamp-torch-* && touch $@

# Order-only on torch: another torch build does not re-install ssrbench.
$(PROJECT_STAMP): $(PROJECT_SOURCES) | $(TORCH_STAMP)
	$(strip $(PIP) install $(if $(EDITABLE),-e) .)
	@rm -f $(VENV)/.stamp-project $(VENV)/.stamp-project-editable && touch $@

# Through the project, so pip resolves the extra together with everything ssrbench needs (torchattacks
# pins an old requests; alone it would break an installed dependency instead of choosing compatible ones).
# RobustBench without its own dependencies: the test extra brings them, all but its timm==1.0.9 pin (pyproject.toml).
$(TEST_STAMP): pyproject.toml | $(PROJECT_STAMP)
	$(PIP) install $(if $(EDITABLE),-e) '.[test]'
	$(PIP) install --no-deps 'robustbench==1.1.1'
	@touch $@

$(DOCS_STAMP): pyproject.toml | $(PROJECT_STAMP)
	$(PIP) install $(if $(EDITABLE),-e) '.[docs]'
	@touch $@

clean-venv:
	rm -rf -- '$(VENV)'

