#!/usr/bin/env bash
# Installs everything the test suite needs (idempotent, no prompts) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

# Debian packages the tests run against, each checked by a file it installs.
need_apt=()
want() { [ -e "$1" ] || need_apt+=("$2"); }
want /usr/bin/cc gcc                            # the native job launcher (daemon/executors/launcher.c)
want /usr/sbin/sshd openssh-server              # test/ssh: a private sshd
want /usr/bin/openssl openssl                   # test/api: TLS certificates
want /usr/sbin/dockerd docker.io                # test/plugins/docker*: a private Docker engine
want /bin/busybox busybox-static                # …and the image it runs, built offline
want /usr/include/libvirt/libvirt.h libvirt-dev # @unraid/libvirt builds against it (npm ci)
want /usr/bin/virsh libvirt-clients             # test/plugins/libvirt*: addresses via virsh
want /usr/sbin/libvirtd libvirt-daemon          # …and a private libvirtd whose test driver outlives a daemon crash
want /usr/bin/chromium chromium                 # test/web: the page in a real browser
want /usr/lib/python3/dist-packages/requests python3-requests # test/compat: batchd's Python client
want /usr/lib/python3/dist-packages/PyQt5 python3-pyqt5       # test/compat: batchd's Qt GUI
want /usr/share/javascript/jquery/jquery.min.js libjs-jquery  # test/compat: batchd's web client
want /usr/share/javascript/d3/d3.min.js libjs-d3               # …and its monitor page
want /usr/lib/python3/dist-packages/yaml python3-yaml         # …and its Python client's config
want /usr/bin/blender blender                   # test/plugins/blender: the add-on in a real Blender
want /usr/bin/vim.basic vim                     # test/plugins/editors: Vim with +job
want /usr/bin/emacs emacs-nox                   # …and Emacs
want /usr/sbin/slurmctld slurmctld              # test/plugins/slurm: a single-node Slurm in a namespace
want /usr/sbin/slurmd slurmd
want /usr/bin/sbatch slurm-client
want /usr/sbin/munged munge
want /usr/bin/sshfs sshfs                       # test/reliability/network-spool: dispatchers sharing a spool over a network file system
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    # Another apt or dpkg may be running (unattended upgrades): wait for its lock, never fail on it.
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "scripts/test.sh: please install: ${need_apt[*]}" >&2
  fi
fi
command -v moto_server >/dev/null 2>&1 || echo "scripts/test.sh: moto_server (EC2 emulator) not on the PATH: the EC2 tests will fail" >&2

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
