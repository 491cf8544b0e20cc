#!/usr/bin/env bash
# The one test command: install, lint, typecheck, unit tests, simulator.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PNPM_VERSION=10.34.9

section() {
  printf '\n==== %s ====\n' "$1"
}

section "pnpm ${PNPM_VERSION}"
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "${PNPM_VERSION}" ]; then
  npm install --global "pnpm@${PNPM_VERSION}"
fi
pnpm --version

section "install"
pnpm install --frozen-lockfile

section "lint"
pnpm lint

section "typecheck"
pnpm typecheck

section "unit tests"
pnpm test:unit --reporter=default --reporter=json --outputFile=.vitest-results.json

section "simulator (300 seeds, all faults)"
pnpm sim --seeds 300 --faults all

section "all checks passed"
node -e 'const r = require("./.vitest-results.json"); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)'
