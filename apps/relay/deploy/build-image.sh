#!/usr/bin/env bash
# Builds the tideline-relay image from this workspace: packs the public
# packages into a build context next to the Dockerfile and runs docker build.
#   bash apps/relay/deploy/build-image.sh [tag]     (default tag: tideline-relay:0.1.0)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
tag=${1:-tideline-relay:0.1.0}
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/packages"
pnpm build
for p in packages/core packages/store-node packages/net-libp2p packages/workloads apps/relay; do
  (cd "$p" && pnpm pack --pack-destination "$context/packages" >/dev/null)
done
cp apps/relay/deploy/Dockerfile "$context/"
docker build --tag "$tag" "$context"
