#!/usr/bin/env bash
# The Debian packages the test suite needs beside npm's: headless Chromium (the HTML report is
# looked at as a person sees it) and Java 17 (AWS's DynamoDB Local runs the ledger tests).
# Installed when missing and this is root with apt-get (CI, a fresh machine); otherwise it says what to run.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || missing+=(chromium)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test tools: installing ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "the tests need: ${missing[*]}; install them (Debian: sudo apt-get install ${missing[*]}) and run npm test again" >&2
exit 1
