# minidocker: the course and the runtime. Run as root (sudo make ...).
#   make demo      set everything up, then run a first container
#   make test      the whole test suite, notebooks and exercises included
#   make lab       open the course in Jupyter Lab
# Other targets: setup, notebooks (re-execute them in place), grade CH=01 [TASK=1_2], bench, prune,
#   classroom-registry (serve the local images to a classroom on :5000, see minidocker/registry/classroom.py).

PYTHON_SYSTEM ?= /usr/bin/python3
VENV          := .venv
PY            := $(VENV)/bin/python
# containerd (ctr) and the OCI runtime-tools validation suite, built offline by tests/runtimetools.py from Go
# and Debian's -dev libraries: the peers of chapter 12 (tests/test_ch12_peers.py)
RUNTIME_TOOLS_PACKAGES := containerd golang-go golang-github-opencontainers-runtime-tools-dev golang-github-google-uuid-dev \
                 golang-github-opencontainers-specs-dev golang-github-mrunalp-fileutils-dev \
                 golang-github-hashicorp-go-multierror-dev golang-github-xeipuuv-gojsonschema-dev \
                 golang-github-opencontainers-selinux-dev golang-gocapability-dev golang-github-urfave-cli-dev \
                 golang-github-sirupsen-logrus-dev golang-github-blang-semver-dev golang-golang-x-sys-dev
# qemu-system-x86: the cgroup v2 guest of tests/test_ch04_vm.py (its kernel is fetched into .cache/vm)
# docker.io: dockerd 20.10 as a peer; the tests start a private one (tests/dockerd.py), never the service
APT_PACKAGES  := busybox-static iproute2 nftables iptables runc util-linux procps python3-venv hyperfine strace \
                 skopeo umoci zstd qemu-system-x86 docker-registry apache2-utils docker.io $(RUNTIME_TOOLS_PACKAGES)
PYTEST_ARGS   ?=

.PHONY: setup demo test lab notebooks grade bench prune apt venv debian-image classroom-registry

setup: apt venv
	@$(PY) -c "from minidocker.image import ImageStore; from minidocker.paths import state_roots; \
	    print('image:', ImageStore(state_roots().images).get('busybox').reference)"

# Installing starts no daemon: docker.io's and docker-registry's postinst scripts would start
# dockerd (with its iptables rules and docker0) and a registry on :5000. A policy-rc.d answering
# 101 ("forbidden") for the time of the install stops that under sysvinit and systemd alike (an
# existing one is left as it is); units the install enabled for the next boot are disabled again.
SERVICE_UNITS := docker.service docker.socket containerd.service docker-registry.service
apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing: $$missing"; \
	    policy=/usr/sbin/policy-rc.d; \
	    if [ ! -e $$policy ]; then \
	        trap 'rm -f '$$policy EXIT; printf '#!/bin/sh\nexit 101\n' >$$policy && chmod 755 $$policy || exit 1; \
	    fi; \
	    enabled=""; \
	    if [ -d /run/systemd/system ]; then \
	        for u in $(SERVICE_UNITS); do systemctl -q is-enabled $$u 2>/dev/null && enabled="$$enabled $$u"; done; \
	    fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing \
	        || exit 1; \
	    if [ -d /run/systemd/system ]; then \
	        for u in $(SERVICE_UNITS); do \
	            case " $$enabled " in *" $$u "*) ;; *) systemctl -q disable $$u 2>/dev/null || true;; esac; \
	        done; \
	    fi; \
	fi

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# The command: pip's console script replaced by a launcher that runs the venv's interpreter
# with -I -S (no site, no .pth files: ~12 ms less per call). See minidocker/cli/launcher.py.
$(VENV)/.launcher: $(VENV)/.installed minidocker/cli/launcher.py
	$(PY) -m minidocker.cli.launcher $(VENV)/bin/minidocker
	ln -sf $(CURDIR)/$(VENV)/bin/minidocker /usr/local/bin/minidocker
	$(PY) -m minidocker.cli.launcher $(VENV)/bin/minidocker-runc minidocker.cli.runc
	ln -sf $(CURDIR)/$(VENV)/bin/minidocker-runc /usr/local/bin/minidocker-runc
	touch $@

venv: $(VENV)/.installed $(VENV)/.launcher

demo: setup
	$(VENV)/bin/minidocker run --rm --hostname demo busybox sh -c \
	    'echo "hostname: $$(hostname)"; echo "my PID: $$$$"; echo "processes I can see:"; ps; \
	     echo "mounts I can see:"; cat /proc/self/mounts'

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lab: setup
	$(PY) -m pip install -q jupyterlab
	$(VENV)/bin/jupyter lab --allow-root --notebook-dir=notebooks

notebooks: setup
	for nb in notebooks/[0-9][0-9]-*.ipynb; do $(VENV)/bin/jupyter execute --inplace "$$nb" || exit 1; done

grade: setup
	$(PY) -m pytest exercises/$(if $(CH),ch$(CH)) $(if $(TASK),-m task$(TASK)) -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(PY) bench/startup.py
	$(PY) bench/network.py
	$(PY) bench/registry.py

# A real Debian base image for later chapters (optional, ~2 min, needs the Debian mirror):
# debootstrap a minbase rootfs, tar it without device nodes, import it as debian:bookworm.
DEBIAN_SUITE ?= bookworm
debian-image: setup
	@command -v debootstrap >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap)
	@tmp=$$(mktemp -d /tmp/minidocker-debian.XXXXXX) && trap 'rm -rf "$$tmp"' EXIT && \
	debootstrap --variant=minbase $(DEBIAN_SUITE) "$$tmp/rootfs" >"$$tmp/log" 2>&1 || { tail -20 "$$tmp/log"; exit 1; }; \
	rm -rf "$$tmp"/rootfs/var/cache/apt/archives/*.deb "$$tmp"/rootfs/var/lib/apt/lists/*; \
	tar --numeric-owner --xattrs --exclude='./dev/*' -C "$$tmp/rootfs" -cf "$$tmp/rootfs.tar" . && \
	$(VENV)/bin/minidocker import -m "debootstrap --variant=minbase $(DEBIAN_SUITE)" "$$tmp/rootfs.tar" debian:$(DEBIAN_SUITE) && \
	$(VENV)/bin/minidocker run --rm debian:$(DEBIAN_SUITE) /bin/cat /etc/debian_version

# A course-local registry for a classroom (Docker Hub allows ~10 anonymous pulls/hour per IP):
# every local image, pushed under its Docker Hub path; students set MINIDOCKER_REGISTRY_MIRROR.
REGISTRY_ADDR ?= 0.0.0.0:5000
classroom-registry: setup
	$(VENV)/bin/minidocker registry serve --addr $(REGISTRY_ADDR) --seed

prune: venv
	$(VENV)/bin/minidocker system prune -f
