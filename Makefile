.PHONY: lint test demo bench schemas
PY := .venv/bin/python

lint:            ## ruff (lint + format check) and mypy --strict over the package and bench/ (CI runs it)
	scripts/lint

test:            ## the README's test command
	scripts/run-tests

demo:            ## the README's run command
	scripts/run-demo

schemas:         ## regenerate schemas/json from the pydantic models
	$(PY) -m leadstream.schemas.export
