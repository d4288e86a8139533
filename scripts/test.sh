#!/usr/bin/env bash
# Run the test suite against real services; arguments go to pytest.
# Exits with pytest's own status.
set -euo pipefail

cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python scripts/run_pytest.py "$@"
