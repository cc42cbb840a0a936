# The two commands at the top of the README. Both install what they need first (deploy/bootstrap.sh).
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: demo test lint unit docs infra-up infra-down

demo:  ## bring the whole system up on this machine and walk one journey end to end
	@bash deploy/bootstrap.sh
	@$(UV) run --frozen python deploy/demo.py

test: lint  ## every test: unit, real Kafka + database, end to end
	@$(UV) run --frozen pytest

lint:
	@bash deploy/bootstrap.sh
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy
	@$(UV) run --frozen lint-imports --no-cache

unit:  ## fast tests only (no servers): pure code, then every use-case rule with fakes
	@$(UV) run --frozen pytest -m "unit or service"

docs:  ## regenerate contracts/schemas and contracts/asyncapi.json from the code
	@$(UV) run --frozen python deploy/contract_docs.py

infra-up:  ## start Kafka + FerretDB in the background (prints their addresses)
	@$(UV) run --frozen python deploy/localinfra.py up

infra-down:
	@$(UV) run --frozen python deploy/localinfra.py down
