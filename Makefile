# minidocker: the course and the runtime. Run as root: `make demo` in a root shell, `sudo make demo`
# from a normal account (the root target stops a non-root make with that hint).
#   make demo      set everything up, then run a first container
#   make test      the whole test suite, notebooks and exercises included
#   make lab       open the course in Jupyter Lab (installs only what the course needs)
#   make site      the course as HTML pages in site/
# Other targets: setup, notebooks (re-execute them in place), grade CH=01|mydocker [TASK=1_2], bench, prune,
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
# What the course needs (make lab): the runtime's tools, and the peers the notebooks run
# (strace in 01, skopeo and umoci in 05-07, Debian's registry and htpasswd in 07).
COURSE_APT_PACKAGES := busybox-static iproute2 nftables iptables runc util-linux procps python3-venv strace \
                       skopeo umoci zstd docker-registry apache2-utils
# What only the tests need (make test):
# qemu-system-x86: the cgroup v2 guest of tests/test_ch04_vm.py and of notebook 04 (its kernel is fetched into .cache/vm)
# docker.io: dockerd 20.10 as a peer; the tests start a private one (tests/dockerd.py), never the service
# chromium: the course site opened headless (tests/test_course_site.py); hyperfine: bench/;
# gcc, libc6-dev: chapter 11's attack probe, built static by the tests (and the headers its syscall table is checked against)
TEST_APT_PACKAGES := hyperfine openssl qemu-system-x86 docker.io chromium gcc libc6-dev uidmap $(RUNTIME_TOOLS_PACKAGES)
APT_PACKAGES  := $(COURSE_APT_PACKAGES) $(TEST_APT_PACKAGES)
PYTEST_ARGS   ?=

.PHONY: setup root demo test lab site notebooks grade bench prune apt venv debian-image classroom-registry

setup: root apt venv
	@$(PY) -c "from minidocker.engine.images import local_image; from minidocker.image import ImageStore; \
	    from minidocker.paths import state_roots; \
	    print('image:', local_image(ImageStore(state_roots().images), 'busybox').reference)"

root:
	@[ "$$(id -u)" = 0 ] || { echo "make: minidocker needs root: run 'sudo make $(or $(MAKECMDGOALS),setup)'," \
	    "or make in a root shell" >&2; exit 1; }

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
	$(PY) -m minidocker.cli.launcher $(VENV)/bin/minidockerd
	ln -sf $(CURDIR)/$(VENV)/bin/minidockerd /usr/local/bin/minidockerd
	$(PY) -m minidocker.cli.launcher $(VENV)/bin/minidocker-runc
	ln -sf $(CURDIR)/$(VENV)/bin/minidocker-runc /usr/local/bin/minidocker-runc
	touch $@

venv: $(VENV)/.installed $(VENV)/.launcher

demo: setup
	$(VENV)/bin/minidocker run --rm --hostname demo busybox sh -c \
	    'echo "hostname: $$(hostname)"; echo "my PID: $$$$"; echo "processes I can see:"; ps; \
	     echo "mounts I can see:"; cat /proc/self/mounts'

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The course only: the test suite's peers (qemu, dockerd, chromium) are not installed by make lab.
lab: APT_PACKAGES := $(COURSE_APT_PACKAGES)
lab: setup
	$(PY) -m pip install -q jupyterlab
	$(VENV)/bin/jupyter lab --allow-root --notebook-dir=notebooks

# The course as a static site in site/ (open site/index.html): every notebook with its outputs,
# the map, the command map, the glossary, the teacher's guide. See docs/build_site.py.
site: venv
	$(PY) docs/build_site.py site

notebooks: setup
	for nb in notebooks/[0-9][0-9]-*.ipynb; do $(VENV)/bin/jupyter execute --inplace "$$nb" || exit 1; done

grade: setup
	$(PY) -m pytest exercises/$(if $(CH),$(if $(filter mydocker,$(CH)),mydocker,ch$(CH))) $(if $(TASK),-m task$(TASK)) -p no:cacheprovider $(PYTEST_ARGS)

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
