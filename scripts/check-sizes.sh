#!/usr/bin/env bash
# The protocol core stays in small files: none in packages/core/src over 400 lines.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LIMIT=400
over=$(find packages/core/src -name '*.ts' -print0 | xargs -0 wc -l | awk -v limit="$LIMIT" '$2 != "total" && $1 > limit { print "  " $2 ": " $1 " lines" }')
if [ -n "$over" ]; then
  echo "files in packages/core/src over ${LIMIT} lines:"
  echo "$over"
  exit 1
fi
echo "no file in packages/core/src over ${LIMIT} lines"
