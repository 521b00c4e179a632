#!/usr/bin/env bash
# Regenerates gen/ from proto/. Only the generated trees are removed first: gen/package.json stays.
set -euo pipefail
cd "$(dirname "$0")/.."
find gen -mindepth 1 -maxdepth 1 ! -name package.json ! -name node_modules ! -name README.md -exec rm -rf {} +
buf generate
