#!/usr/bin/env bash
# pnpm contracts:check — the contract gate CI runs:
#   1. buf format (no diff)   2. buf lint   3. buf breaking against the base   4. gen/ is fresh.
# The base is CONTRACTS_BASE when set; otherwise the merge base with origin/main (or main) when HEAD
# has moved past it, else HEAD~1 — so on main each commit is checked against the one before it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"

step() { printf '\n== %s\n' "$1"; }

step "buf format"
buf format --diff --exit-code

step "buf lint"
buf lint

step "buf breaking"
base="${CONTRACTS_BASE:-}"
if [ -z "$base" ]; then
  upstream=""
  for ref in origin/main main; do
    if git rev-parse -q --verify "$ref^{commit}" >/dev/null; then upstream=$ref; break; fi
  done
  if [ -n "$upstream" ] && [ "$(git rev-parse HEAD)" != "$(git rev-parse "$upstream")" ]; then
    base=$(git merge-base HEAD "$upstream")
  elif ! git diff --quiet HEAD -- proto buf.yaml; then
    base=HEAD
  elif git rev-parse -q --verify 'HEAD~1^{commit}' >/dev/null; then
    base=$(git rev-parse HEAD~1)
  fi
fi
if [ -z "$base" ]; then
  echo "no earlier commit to compare with: breaking check skipped"
elif ! git cat-file -e "$base:buf.yaml" 2>/dev/null; then
  echo "base $base has no buf.yaml (contracts did not exist yet): breaking check skipped"
else
  echo "against $base"
  buf breaking --against ".git#ref=$base"
fi

step "generated code is fresh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
buf generate -o "$tmp"
if ! diff -r -q -x node_modules -x package.json -x README.md "$tmp/gen" gen; then
  echo "gen/ is stale: run 'pnpm generate' and commit the result" >&2
  exit 1
fi
echo "contracts ok"
