# bankq: the front door. `make run` and `make test` set up everything they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-fast chaos lint bench migrate system-deps clean

# exec: the launcher is make's own child, so a SIGTERM sent to make reaches it (and it watches make for SIGINT).
run: $(STAMP)
	@./.ci/system-deps run
	exec $(PY) -m tasks.launcher

# Two pytest-xdist workers: the tests that start processes run in order on one (tests/conftest.py), unit and
# integration tests spread over both. With servers of your own (TEST_REDIS_URL, TEST_AMQP_URL) the workers would
# share their queues, so one worker then.
TEST_WORKERS ?= $(if $(TEST_REDIS_URL)$(TEST_AMQP_URL),1,2)
test: $(STAMP) system-deps
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

# The chaos test at full size: >= 3,000 transfers through 10 worker kills, 2 Redis restarts and a PostgreSQL restart.
chaos: $(STAMP) system-deps
	BANKQ_CHAOS=full $(PY) -m pytest -m chaos -s tests/e2e/test_chaos.py

test-fast: $(STAMP)
	$(PY) -m pytest tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check api core tasks beat tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy core

bench: $(STAMP) system-deps
	$(PY) -m bench

migrate: $(STAMP)
	$(PY) -c "from core.bank import Bank; from core.setup import prepare; prepare(Bank())"

$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "python3 is required"; exit 1; }
	@$(PYTHON) -c "import venv, ensurepip" 2>/dev/null || ./.ci/system-deps python
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# PostgreSQL, Redis and RabbitMQ binaries for the throwaway test servers (each skipped when its TEST_*_URL is set).
system-deps:
	@./.ci/system-deps test

clean:
	rm -rf $(VENV) var .pytest_cache
