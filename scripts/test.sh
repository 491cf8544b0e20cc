#!/usr/bin/env bash
# The one test command: install, lint, typecheck, unit tests, simulator.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() {
  printf '\n==== %s ====\n' "$1"
}

section "pnpm"
source scripts/pnpm.sh
pnpm --version

section "install"
pnpm install --frozen-lockfile

section "lint"
pnpm lint

section "typecheck"
pnpm typecheck

section "structure (no import cycle in any package's src; no core file over 400 lines)"
pnpm check:cycles
pnpm check:sizes

section "Chromium"
# Never downloaded: Debian's chromium (installed here when missing and we are root),
# or the binary TIDELINE_CHROMIUM names, or Playwright's own on a normal machine.
if [ -z "${TIDELINE_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "no chromium on PATH and TIDELINE_CHROMIUM unset: falling back to Playwright's own Chromium"
  fi
fi
command -v chromium >/dev/null 2>&1 && chromium --version || true

section "nginx (the TLS reverse-proxy test)"
# Debian's nginx, installed here when missing and we are root; without it that one test is skipped.
if [ -z "${TIDELINE_NGINX:-}" ] && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
    # The package may start a system nginx on port 80; the test runs its own.
    service nginx stop >/dev/null 2>&1 || true
  else
    echo "no nginx at /usr/sbin/nginx and TIDELINE_NGINX unset: the TLS reverse-proxy test will be skipped"
  fi
fi
if [ -x "${TIDELINE_NGINX:-/usr/sbin/nginx}" ]; then "${TIDELINE_NGINX:-/usr/sbin/nginx}" -v; fi

section "unit tests"
pnpm test:unit --reporter=default --reporter=json --outputFile=.vitest-results.json

section "browser tests (Playwright, real Chromium)"
pnpm test:e2e

section "simulator (300 seeds, all faults; then other group shapes without faults, where every operation must complete)"
pnpm sim --seeds 300 --faults all
pnpm sim --seeds 50 --voters 1 --observers 1 --faults none
pnpm sim --seeds 30 --voters 5 --observers 2 --faults none

section "all checks passed"
node -e '
const unit = require("./.vitest-results.json")
const e2e = require("./.playwright-results.json").stats
const passed = unit.numPassedTests + e2e.expected
const failed = unit.numFailedTests + e2e.unexpected + e2e.flaky
console.log(`unit: ${unit.numPassedTests} passed, browser: ${e2e.expected} passed`)
console.log(`tests: ${passed} passed, ${failed} failed`)'
