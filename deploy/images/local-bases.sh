#!/usr/bin/env bash
# Assembles the two base images the image test builds on, from this machine's own files, because no
# registry can be reached here. They mirror what the Dockerfiles default to:
#   dispatch-local/node-build:24    node:24-bookworm-slim stand-in: Node 24, npm, /bin/sh, CA certificates
#   dispatch-local/node-runtime:24  distroless nodejs24 stand-in: Node 24 at /nodejs/bin/node, its shared
#                                   libraries, /etc/passwd with the nonroot user (65532), and nothing else
# Usage: deploy/images/local-bases.sh [path-to-node-24]   (idempotent; BUILDAH_FLAGS are passed through)
set -euo pipefail
node_bin=${1:-$(command -v node)}
"$node_bin" -e 'if (+process.versions.node.split(".")[0] !== 24) { console.error("need Node 24, got " + process.version); process.exit(1) }'
# The binary itself, not a shim script (node_modules/.bin/node is one).
node_bin=$("$node_bin" -p process.execPath)
b() { buildah --storage-driver vfs "$@"; }

# Every shared library a binary needs, with the loader, at their own paths.
libs_of() { ldd "$@" | awk '/=> \//{print $3} /^\s*\/lib/{print $1}' | sort -u; }

copy_libs() { # root, binaries...
  local root=$1; shift
  for f in $(libs_of "$@"); do
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
  done
}

passwd_files() { # root
  mkdir -p "$1/etc" "$1/tmp" "$1/home/nonroot"
  chmod 1777 "$1/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$1/etc/group"
  chown 65532:65532 "$1/home/nonroot"
}

build_runtime() {
  local root; root=$(mktemp -d)
  mkdir -p "$root/nodejs/bin"
  cp -L "$node_bin" "$root/nodejs/bin/node"
  copy_libs "$root" "$node_bin"
  passwd_files "$root"
  local c; c=$(b from scratch)
  b copy "$c" "$root" / >/dev/null
  b config --env PATH=/nodejs/bin:/usr/bin:/bin --user 65532:65532 --workingdir /home/nonroot \
    --entrypoint '["/nodejs/bin/node"]' "$c"
  b commit --quiet "$c" dispatch-local/node-runtime:24 >/dev/null
  b rm "$c" >/dev/null
  rm -rf "$root"
}

build_build() {
  local root; root=$(mktemp -d)
  mkdir -p "$root/usr/local/bin" "$root/usr/local/lib" "$root/root" "$root/etc/ssl/certs" "$root/bin" "$root/usr/bin"
  cp -L "$node_bin" "$root/usr/local/bin/node"
  copy_libs "$root" "$node_bin" /bin/sh /usr/bin/env
  cp -L /bin/sh "$root/bin/sh"
  cp -L /usr/bin/env "$root/usr/bin/env"
  # npm's own package, wherever this machine keeps it (npm root -g would answer for the Node on PATH).
  local npm_dir; npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [ -f "$npm_dir/package.json" ] || { echo "npm not found (looked in $npm_dir)" >&2; exit 1; }
  cp -a "$npm_dir" "$root/usr/local/lib/npm"
  ln -s ../lib/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  passwd_files "$root"
  # npm installs global packages under its prefix: /usr/local.
  mkdir -p "$root/usr/local/lib/node_modules"
  mv "$root/usr/local/lib/npm" "$root/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  printf 'prefix=/usr/local\n' >"$root/usr/local/etc-npmrc" && mkdir -p "$root/usr/local/etc" && mv "$root/usr/local/etc-npmrc" "$root/usr/local/etc/npmrc"
  local c; c=$(b from scratch)
  b copy "$c" "$root" / >/dev/null
  b config --env PATH=/usr/local/bin:/usr/bin:/bin --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt "$c"
  b commit --quiet "$c" dispatch-local/node-build:24 >/dev/null
  b rm "$c" >/dev/null
  rm -rf "$root"
}

b inspect --type image dispatch-local/node-runtime:24 >/dev/null 2>&1 || build_runtime
b inspect --type image dispatch-local/node-build:24 >/dev/null 2>&1 || build_build
b images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep dispatch-local/
