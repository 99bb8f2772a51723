# HHmL developer tasks. GNU make; needs only python3 (≥ 3.10) with venv on the PATH.
#
#   make install     create .venv and install hhml[dev] into it (idempotent)
#   make test        fast tests; make help lists everything
#
# Override on the command line, e.g. `make install PYTHON=python3.11 VENV=/tmp/hhml-venv`.

PYTHON     ?= python3
VENV       ?= .venv
TORCH_SPEC ?= torch==2.13.0

VPY        := $(VENV)/bin/python
VBIN       := $(VENV)/bin
STAMP      := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
DOCS_STAMP := $(VENV)/.installed-docs
# Only the directories that exist: ruff fails on a missing path, and git drops empty ones.
LINT_PATHS := $(wildcard src tests examples benchmarks docs)

.DEFAULT_GOAL := help
.PHONY: help install kernels run simulate test test-all lint lint-docker docs docs-serve format typecheck validate bench bench-env bench-rl bench-dist wheel-check test-postgres clean distclean

help: ## List the targets
	@echo "HHmL make targets (variables: PYTHON=$(PYTHON) VENV=$(VENV) TORCH_SPEC=$(TORCH_SPEC)):"
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z][a-z-]*:.*## / {printf "  %-10s %s\n", $$1, $$2}' \
		$(firstword $(MAKEFILE_LIST))

install: $(STAMP) ## Create the venv and install hhml[dev] (torch first, only if missing)

$(VPY):
	$(PYTHON) -m venv $(VENV)

# Re-runs only when pyproject.toml changes (the install is editable, so source edits need
# nothing). Torch is installed on its own first, and only when it does not import: an
# existing torch (CPU or CUDA) is kept, and pip never resolves `torch>=…` to a multi-GB
# CUDA build by accident. The C++ kernels are then compiled side by side on every core
# (a kernel that cannot be built is reported, and the torch code runs in its place).
$(STAMP): pyproject.toml | $(VPY)
	@if $(VPY) -c "import torch" >/dev/null 2>&1; then \
		echo "torch already installed: $$($(VPY) -c 'import torch; print(torch.__version__)')"; \
	else \
		echo "installing $(TORCH_SPEC)"; \
		$(VPY) -m pip install "$(TORCH_SPEC)"; \
	fi
	$(VPY) -m pip install -e ".[dev]"
	-$(VPY) -m hhml.utils.cpp_build
	@touch $@

kernels: install ## Build the C++ kernels now, side by side (after editing their sources)
	$(VPY) -m hhml.utils.cpp_build

run: install ## Train TD3 on the set-point task beside its equal-budget baselines (~2-3 min on 2 cores)
	$(VBIN)/hhml-train --config setpoint

simulate: install ## Run the Möbius example (results/example) and the quick validation
	$(VPY) examples/simulate_mobius.py --out results/example
	$(VBIN)/hhml-validate --quick

test: install ## Fast tests (everything not marked slow)
	$(VPY) -m pytest -m "not slow" -q

test-all: install ## All tests, slow ones included
	$(VPY) -m pytest -q

lint: install ## ruff check and black --check
	$(VBIN)/ruff check $(LINT_PATHS)
	$(VBIN)/black --check $(LINT_PATHS)

lint-docker: install ## hadolint + shellcheck + compose/reference checks of docker/ (no engine needed)
	PATH="$(abspath $(VBIN)):$$PATH" PYTHON="$(abspath $(VPY))" bash docker/lint.sh

$(DOCS_STAMP): $(STAMP)
	$(VPY) -m pip install -e ".[docs]"
	@touch $@

docs: $(DOCS_STAMP) ## Build the MkDocs site strictly into site/ (parameter table checked first)
	$(VPY) docs/gen_parameters.py --check
	$(VPY) docs/gen_config_reference.py --check
	NO_MKDOCS_2_WARNING=1 $(VBIN)/mkdocs build --strict

docs-serve: $(DOCS_STAMP) ## Serve the docs at http://127.0.0.1:8000 with live reload
	$(VBIN)/mkdocs serve

format: install ## Apply ruff fixes and black formatting
	$(VBIN)/ruff check --fix $(LINT_PATHS)
	$(VBIN)/black $(LINT_PATHS)

typecheck: install ## mypy (strict on src/hhml, configured in pyproject.toml)
	$(VBIN)/mypy

validate: install ## Full validation (hhml-validate: physics, tensor-networks, gft groups)
	$(VBIN)/hhml-validate

$(BENCH_STAMP): $(STAMP)
	$(VPY) -m pip install -e ".[bench]"
	@touch $@

bench: $(BENCH_STAMP) ## Install hhml[bench] and run benchmarks/bench_rhs.py (vs py-pde)
	$(VPY) benchmarks/bench_rhs.py

bench-env: install ## Env-steps/s of the Möbius env, 1 to 128 envs (benchmarks/bench_env.py)
	$(VPY) benchmarks/bench_env.py

bench-rl: install ## TD3 on Pendulum-v1, 20 000 steps (~4 min); all runs: benchmarks/README.md
	$(VPY) benchmarks/bench_pendulum.py run --algo td3 --steps 20000 --seeds 0 \
		--out results/pendulum_td3.json

bench-dist: install ## Steps/s of the quickstart with 1 and 2 ranks (benchmarks/bench_distributed.py)
	$(VPY) benchmarks/bench_distributed.py --nproc 1 2

wheel-check: install ## Build the wheel, install it in a fresh venv, run the CLIs in an empty dir
	PYTHON="$(PYTHON)" VENV="$(VENV)" TORCH_SPEC="$(TORCH_SPEC)" bash .ci/wheel_smoke.sh

test-postgres: install ## Two hhml-optimize workers on one study of a throwaway PostgreSQL server
	VENV="$(VENV)" bash .ci/postgres_test.sh

clean: ## Remove build artefacts, caches and results/ (keeps the venv)
	rm -rf build dist site htmlcov .coverage results
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis
	rm -rf *.egg-info src/*.egg-info
	@for d in $(LINT_PATHS); do \
		find "$$d" -type d -name __pycache__ -prune -exec rm -rf {} +; \
	done

distclean: clean ## clean, and remove the venv too
	rm -rf $(VENV)
