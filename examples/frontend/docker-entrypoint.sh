#!/bin/sh
# Writes the runtime configuration the frontend reads, then runs the command.
set -e
echo "{\"port\": ${THREEK8S_PORT:-8080}}" > /tmp/runtime-config.json
exec "$@"
