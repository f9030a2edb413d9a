#!/usr/bin/env bash
# Set up (if needed) and start the server with the default model and the demo page.
# Extra arguments go to the server: scripts/run.sh --port 9000 --generator passthrough
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m server "$@"
