.PHONY: install dev lint test bench

install:
	sh scripts/bootstrap.sh

dev:
	sh scripts/dev.sh

lint:
	.venv/bin/ruff format --check . && .venv/bin/ruff check . && .venv/bin/mypy

test:
	sh scripts/test.sh

bench:
	.venv/bin/python benchmarks/engine_quality.py
