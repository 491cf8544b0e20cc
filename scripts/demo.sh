#!/usr/bin/env bash
# The demo command: installs pnpm and the dependencies when needed, then starts
# three local relays and serves the demo app (demo/scripts/demo.ts).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PNPM_VERSION=10.34.9

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "${PNPM_VERSION}" ]; then
  npm install --global "pnpm@${PNPM_VERSION}"
fi
pnpm install --frozen-lockfile --reporter=silent

exec node --conditions=@tideline/source --import tsx demo/scripts/demo.ts
