#!/usr/bin/env bash
# Installs everything the test suite needs (idempotent, no prompts) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

need_apt=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl) # test/api: TLS certificates
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "scripts/test.sh: please install: ${need_apt[*]}" >&2
  fi
fi

npm ci --no-fund --no-audit

# The whole suite; vitest also writes a JSON report, from which a plain closing line is printed.
mkdir -p var
rm -f var/vitest-results.json
set +e
npm test -- --reporter=default --reporter=json --outputFile.json=var/vitest-results.json
status=$?
set -e
if [ -f var/vitest-results.json ]; then
  node -e 'const r = JSON.parse(require("fs").readFileSync("var/vitest-results.json", "utf8"));
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);'
fi
exit "$status"
