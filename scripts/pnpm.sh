# Sourced by the README's commands: puts pnpm $PNPM_VERSION first on PATH without
# replacing anyone's pnpm. The pnpm already on PATH is used when it is that
# version; otherwise a private copy is installed under .tideline/tools/ with npm
# (a global pnpm of another version is left alone).
PNPM_VERSION=10.34.9
ensure_pnpm() {
  if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version)" = "${PNPM_VERSION}" ]; then
    return 0
  fi
  local tools="$PWD/.tideline/tools"
  if [ ! -x "${tools}/node_modules/.bin/pnpm" ] || [ "$("${tools}/node_modules/.bin/pnpm" --version)" != "${PNPM_VERSION}" ]; then
    echo "installing pnpm ${PNPM_VERSION} into ${tools} (the pnpm on PATH, if any, is left alone)"
    mkdir -p "${tools}"
    npm install --prefix "${tools}" --no-fund --no-audit --loglevel=error "pnpm@${PNPM_VERSION}"
  fi
  export PATH="${tools}/node_modules/.bin:${PATH}"
}
ensure_pnpm
