# Everything a fresh machine needs: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUESTION ?= how can I train a denoiser when I only have one noisy image?

.PHONY: run test install lint typecheck pytest bench clean browser

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first, pinned to the CPU build on disk: otherwise pip resolves sentence-transformers'
# torch requirement to a several-GB CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,web]'
	# The package is installed editable; compile it now so that no command pays for it.
	$(BIN)/python -m compileall -q search
	touch $(STAMP)

install: $(STAMP)

run: install
	HF_HUB_OFFLINE=1 $(BIN)/papers rebuild
	$(BIN)/papers ask "$(QUESTION)"

lint: install
	$(BIN)/ruff check search tests $(wildcard bench)
	$(BIN)/ruff format --check search tests $(wildcard bench)

# The public API is also held to --strict on its own (the per-module flags in pyproject.toml
# do the same inside the whole-package run).
typecheck: install
	$(BIN)/mypy
	$(BIN)/mypy --strict --follow-imports=silent search/api.py search/faces/output.py search/faces/cli_common.py

# Browser tests drive Debian's Chromium through Playwright (its own browser download is not
# reachable): install the package when root and absent; otherwise those tests skip, saying why.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		(apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
		|| echo "could not install chromium: browser tests will skip" >&2; fi

pytest: install browser
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q

test: lint typecheck pytest

clean:
	rm -rf $(VENV) index/gen-* index/CURRENT index/encoders
