#!/usr/bin/env bash
# scripts/build.sh DIR [CONFIGURE ARGS...] - configures and builds the tree
# out of source in DIR (relative to the top folder), regenerating configure
# when needed. Prints the build folder's absolute path on the last line.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$1
shift
cd "$top"
[[ -x configure && configure -nt configure.ac ]] || autoreconf -fi >/dev/null
mkdir -p "$dir"
cd "$dir"
if [[ ! -f Makefile || ! -f config.status ]] || ! grep -qF -- "$*" config.log 2>/dev/null; then
  "$top/configure" "$@" >configure.out 2>&1 || { cat configure.out >&2; exit 1; }
fi
make -j"$(nproc)" >make.out 2>&1 || { tail -50 make.out >&2; exit 1; }
pwd
