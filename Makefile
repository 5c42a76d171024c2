# salespulse: `make demo` then `make test` on a fresh machine (JDK 17+ and Maven needed).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DURATION ?= 45
DAYS ?= 30
RATE ?= 200
# Demo-only key; production must set its own secret (settings refuse this one there).
export SALESPULSE_PII_HMAC_KEY ?= salespulse-demo-key-NOT-FOR-PRODUCTION

.PHONY: faults help venv jars browser demo up test lint typecheck unit integration bench clean hooks

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "salespulse needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/.installed ## create .venv and install salespulse with dev tools

jars: venv ## resolve Apache Kafka jars from Maven Central into var/kafka/libs
	$(BIN)/salespulse kafka fetch

# Debian's chromium drives the console's browser tests (Playwright, executable_path); a CJK
# font so screenshots show Chinese. Installs with apt-get when missing (root or sudo).
browser: ## install Debian's chromium and a Chinese font for the browser tests
	@if [ ! -x /usr/bin/chromium ] || ! fc-list 2>/dev/null | grep -qi 'WenQuanYi\|Noto Sans CJK'; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q chromium fonts-wqy-microhei >/dev/null \
	  || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium fonts-wqy-microhei >/dev/null; }; \
	fi
	@/usr/bin/chromium --version 2>/dev/null

demo: jars ## start Kafka, worker and sink; simulate DAYS of history + DURATION s live; summarise
	$(BIN)/salespulse demo --days $(DAYS) --duration $(DURATION) --rate $(RATE)

up: jars ## Kafka, worker and serve until Ctrl-C; console at http://127.0.0.1:8080/
	$(BIN)/salespulse up

lint: venv ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv ## strict mypy on our packages
	$(BIN)/mypy

unit: venv ## tests that need no broker
	$(BIN)/pytest -m "not integration"

integration: jars browser ## tests against the real local Kafka and chDB
	$(BIN)/pytest -m integration

test: jars browser lint typecheck ## lint, types and the whole suite (integration included)
	$(BIN)/pytest

bench: jars ## measure, write BENCHMARKS.md
	$(BIN)/python -m bench.run

faults: jars ## the fault table alone: kills, duplicates, a second worker, broker stop, frozen sink (FAULT_EVENTS=100000, FAULTS=a,b)
	$(BIN)/python -m bench.faults

hooks: venv ## install the local pre-commit hooks
	$(BIN)/pre-commit install

clean: ## stop the local broker and remove var/ (data!) and caches
	-$(BIN)/salespulse kafka stop
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
