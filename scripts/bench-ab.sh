#!/usr/bin/env bash
# A/B benchmark of this work tree against another commit, runs alternating:
#   bash scripts/bench-ab.sh <base-ref> <rounds> <bench args...>
# e.g. bash scripts/bench-ab.sh cb1e163 5 core --seconds 5
# Prints each run's "<workload>: N txn/s" line and the median of each side.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
base_ref=$1; rounds=$2; shift 2
base_dir=$(mktemp -d /tmp/tideline-ab-XXXXXX)
trap 'git worktree remove --force "$base_dir" >/dev/null 2>&1 || true' EXIT
git worktree add --detach "$base_dir" "$base_ref" >/dev/null
(cd "$base_dir" && pnpm install --frozen-lockfile --offline >/dev/null 2>&1 || pnpm install --frozen-lockfile >/dev/null)
a=(); b=()
for i in $(seq "$rounds"); do
  for side in A B; do
    dir=$base_dir; [ "$side" = B ] && dir=$PWD
    line=$(cd "$dir" && pnpm --silent bench "$@" | grep -E '^[a-z-]+: [0-9]+ txn/s' | tail -1)
    n=$(echo "$line" | grep -oE '[0-9]+ txn/s' | grep -oE '[0-9]+')
    echo "round $i $side ($([ "$side" = A ] && echo "$base_ref" || echo 'this tree')): $line"
    if [ "$side" = A ]; then a+=("$n"); else b+=("$n"); fi
  done
done
median () { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
echo "median A ($base_ref): $ma txn/s; median B (this tree): $mb txn/s; B/A $(awk -v a="$ma" -v b="$mb" 'BEGIN { printf "%.2f", b / a }')"
