# The two README commands: `make demo` runs the main job, `make test` runs the tests.
.PHONY: setup demo test bench

setup:
	./scripts/setup.sh

demo: setup
	.venv/bin/demon demo

test: setup
	.venv/bin/python -m pytest -q

bench: setup
	.venv/bin/python bench/ring.py
