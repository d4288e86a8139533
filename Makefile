# moov.olt: `make up` runs the whole stack, `make test` runs the tests.

PY_PACKAGES := moovolt bus store billing spr_gateway ingress workflows activities api temporal

.PHONY: up test lint setup

up: setup
	.venv/bin/moovolt up

test:
	scripts/test.sh

setup:
	scripts/setup.sh

lint:
	.venv/bin/ruff format --check .
	.venv/bin/ruff check .
	.venv/bin/mypy $(PY_PACKAGES)
