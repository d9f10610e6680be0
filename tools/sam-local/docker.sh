#!/usr/bin/env bash
# Make sure a Docker engine answers: install Debian's docker.io when dockerd is missing, start dockerd
# when none runs. Prints the pid of a dockerd this script started (empty when one was running already),
# so that the caller can stop what it started and nothing else.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null; then
  echo "docker: installing docker.io from apt" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
log=${TMPDIR:-/tmp}/arcturus-dockerd.log
nohup dockerd >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    echo "$pid"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 1
done
echo "docker: dockerd did not start; its log:" >&2
tail -20 "$log" >&2
exit 1
