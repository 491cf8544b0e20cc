#!/usr/bin/env bash
# The demo command: installs pnpm and the dependencies when needed, then starts
# three local relays and serves the demo app (demo/scripts/demo.ts).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/pnpm.sh
pnpm install --frozen-lockfile --reporter=silent

exec node --conditions=@tideline/source --import tsx demo/scripts/demo.ts
