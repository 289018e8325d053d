#!/bin/sh
# The container is healthy while the page it serves is there.
test -f /usr/share/threek8s/index.html
