#!/usr/bin/env bash
# Build a stand-in for Lambda's python3.13 base image, for `sam local` on a machine that can pull no image.
#
#   tools/sam-local/base-image.sh IMAGE PYTHON RUNTIME_REQUIREMENTS
#
# IMAGE is the local tag to create (handed to sam local with --invoke-image); PYTHON a CPython 3.13
# interpreter of this machine's architecture (its installation is copied to /var/lang, as in Lambda);
# RUNTIME_REQUIREMENTS pins what the managed runtime ships beside it (boto3, botocore, urllib3, ...) and
# awslambdaric, the runtime interface client that /var/runtime/bootstrap runs. Nothing is rebuilt when
# IMAGE exists already: delete it (docker rmi IMAGE) after changing this script or those pins.
#
# SAM CLI builds its own image on top: it adds the Runtime Interface Emulator from its own wheel and the
# layer under /opt, and starts /var/rapid/aws-lambda-rie, which execs /var/runtime/bootstrap.
set -euo pipefail
image=$1 python=$2 requirements=$3

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image: cached"
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

prefix=$("$python" -c 'import sys; print(sys.base_prefix)')
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$version" = 3.13 ] || { echo "base-image: $python is Python $version, not 3.13" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
echo "base image $image: debootstrap (about 2 minutes)"
# The shared libraries CPython's extension modules link to (ssl, ctypes, sqlite3, bz2, lzma, readline).
debootstrap --variant=minbase \
  --include=ca-certificates,libssl3,libffi8,libsqlite3-0,libbz2-1.0,libexpat1,libncursesw6,libreadline8 \
  bookworm "$root" "$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)" \
  >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

echo "base image $image: CPython $version from $prefix, runtime libraries"
mkdir -p "$root/var/lang" "$root/var/runtime" "$root/var/task" "$root/opt"
tar -C "$prefix" --exclude="lib/python$version/test" --exclude="lib/python$version/site-packages/*" \
  --exclude='*/idlelib' --exclude='*/tkinter' --exclude='*/turtledemo' -cf - . | tar -C "$root/var/lang" -xf -
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-compile \
  --only-binary=:all: --require-hashes --no-deps --target "$root/var/runtime" -r "$requirements"
rm -rf "$root/var/runtime/bin"

# Lambda's bootstrap for Python: the runtime interface client runs the handler named in _HANDLER.
cat >"$root/var/runtime/bootstrap" <<'BOOT'
#!/bin/sh
exec /var/lang/bin/python3 -m awslambdaric "$_HANDLER"
BOOT
chmod 755 "$root/var/runtime/bootstrap"

# The environment Lambda's own image declares; PYTHONPATH puts the task and the layer ahead of the
# runtime's copies, the order a deployed function sees.
tar -C "$root" -c . | docker import \
  -c 'ENV LANG=en_US.UTF-8' \
  -c 'ENV TZ=:/etc/localtime' \
  -c 'ENV PATH=/var/lang/bin:/usr/local/bin:/usr/bin:/bin:/opt/bin' \
  -c 'ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib' \
  -c 'ENV LAMBDA_TASK_ROOT=/var/task' \
  -c 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
  -c 'ENV PYTHONPATH=/var/task:/opt/python:/var/runtime' \
  -c 'WORKDIR /var/task' \
  -c 'ENTRYPOINT ["/var/runtime/bootstrap"]' \
  - "$image" >/dev/null
echo "base image $image: built"
