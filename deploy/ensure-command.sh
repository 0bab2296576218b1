#!/usr/bin/env bash
# ensure-command.sh COMMAND PACKAGE WHAT: installs Debian's PACKAGE where COMMAND is missing and apt-get
# is there (CI, a fresh machine); elsewhere says what to install and fails.
set -euo pipefail
command=$1 package=$2 what=$3
if command -v "$command" >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$what needs $command: install it (the $package package on Debian and Ubuntu) and put it on PATH" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "installing Debian's $package for $what"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
command -v "$command" >/dev/null 2>&1
