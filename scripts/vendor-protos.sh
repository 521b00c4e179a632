#!/usr/bin/env bash
# Copies the standard protos Dispatch serves but does not own out of their npm packages into
# proto/vendor (a buf module of its own, with relaxed lint). Re-run after bumping those packages.
set -euo pipefail
cd "$(dirname "$0")/.."
v=proto/vendor
cp node_modules/grpc-health-check/proto/health/v1/health.proto $v/grpc/health/v1/health.proto
cp node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto $v/grpc/reflection/v1/reflection.proto
cp node_modules/@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto $v/grpc/reflection/v1alpha/reflection.proto
cp node_modules/google-proto-files/google/rpc/status.proto $v/google/rpc/status.proto
cp node_modules/google-proto-files/google/rpc/error_details.proto $v/google/rpc/error_details.proto
cp node_modules/google-proto-files/google/rpc/code.proto $v/google/rpc/code.proto
node_modules/.bin/buf format -w proto/vendor
