# ds-lb — the two commands of the README, and their parts.
SHELL := /bin/bash
SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
LISTEN ?= 0.0.0.0:5000
REPLICAS ?= 3

# make install: PREFIX (/usr/local) and DESTDIR as usual; the release build links the Swift
# runtime statically, so the binaries run on a Debian 12 without a Swift toolchain.
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
# ds-lb reads /etc/ds-lb/ds-lb.toml by default, whatever the PREFIX.
SYSCONFDIR ?= /etc
INSTALL_SCRATCH ?= .build-install

.PHONY: run test lint format deps build release install systemd-e2e unit-test integration-test tsan-test clean images docker-e2e fuzz fuzz-smoke test-sanitize analyses

## make run: install what is missing, build release, run ds-lb on :5000 with 3 local replicas.
run: release
	.build/release/ds-lb --listen $(LISTEN) --replicas $(REPLICAS)

## make test: install what is missing, then the whole suite: unit and end-to-end tests (with the
## zero-allocation check on a release probe), the whole suite again under the thread and the address
## sanitizer, a short run of every fuzz target, Docker and systemd end to end. The format lint
## runs first: a tree that is not formatted fails in seconds, before the build.
test: deps
	@$(MAKE) --no-print-directory lint
	$(SWIFT) build --build-tests
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path $(INSTALL_SCRATCH) --product ds-alloc-count
	@# The sanitized builds start now, at the lowest CPU priority, on what the suite below leaves
	@# idle (it mostly waits on the processes it starts); tests/sanitize.sh then finds them done,
	@# or waits on SwiftPM's lock of their build directory until they are.
	mkdir -p .build && (SANITIZE_BUILD_ONLY=1 nice -n 19 tests/sanitize.sh thread address >.build/sanitize-prebuild.log 2>&1 &)
	DSLB_ALLOC_COUNT_BIN=$(CURDIR)/$(INSTALL_SCRATCH)/release/ds-alloc-count $(SWIFT) test --skip-build
	@# The whole suite, end-to-end tests included, under both sanitizers: the integration targets
	@# add only minutes to the unit targets, whose sanitized builds this already paid for
	@# (timings in bench/RESULTS.md).
	tests/sanitize.sh thread address
	$(MAKE) fuzz-smoke
	$(MAKE) docker-e2e
	$(MAKE) systemd-e2e

## make lint: swift format lint --strict (the rules in .swift-format) over the Swift sources; changes nothing.
FORMAT_PATHS := Sources Tests Package.swift
lint:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMAT_PATHS) \
	  || { echo "make lint: the tree does not match .swift-format (findings above); 'make format' fixes the layout and lists what needs a hand edit (CONTRIBUTING.md)" >&2; exit 1; }

## make format: swift format format --in-place over the same files, then the lint (scripts/format-tree.sh).
format:
	SWIFT=$(SWIFT) scripts/format-tree.sh

## make systemd-e2e: ds-lb installed into a Debian 12 root and run by a real systemd (root; see the script).
systemd-e2e:
	tests/systemd-e2e.sh

## make install: the binaries to $(DESTDIR)$(BINDIR), the units to $(DESTDIR)$(UNITDIR), a commented
## default configuration to $(DESTDIR)$(SYSCONFDIR)/ds-lb/ds-lb.toml (unless one exists).
install:
	@scripts/install-deps.sh build
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path $(INSTALL_SCRATCH)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR)
	install -m 755 $(INSTALL_SCRATCH)/release/ds-lb $(INSTALL_SCRATCH)/release/ds-server $(DESTDIR)$(BINDIR)/
	install -m 644 systemd/ds-lb.socket systemd/ds-lb-admin.socket systemd/ds-lb-https.socket $(DESTDIR)$(UNITDIR)/
	sed 's|/usr/local/bin/|$(BINDIR)/|g' systemd/ds-lb.service >$(DESTDIR)$(UNITDIR)/ds-lb.service
	chmod 644 $(DESTDIR)$(UNITDIR)/ds-lb.service
	@# The commented default configuration; an existing one is kept.
	install -d $(DESTDIR)$(SYSCONFDIR)/ds-lb
	[ -e $(DESTDIR)$(SYSCONFDIR)/ds-lb/ds-lb.toml ] || { sed 's|/usr/local/bin/|$(BINDIR)/|g' systemd/ds-lb.toml >$(DESTDIR)$(SYSCONFDIR)/ds-lb/ds-lb.toml && chmod 644 $(DESTDIR)$(SYSCONFDIR)/ds-lb/ds-lb.toml; }

## make images: ds-server:latest and ds-lb:latest FROM scratch, no registry (docker/build-images.sh).
images:
	@scripts/install-deps.sh build
	docker/build-images.sh

## make docker-e2e: the Docker driver end to end on a real engine (installs and starts one if needed).
docker-e2e:
	docker/e2e-test.sh

## make analyses: ds-bench's A-1…A-4 (PNG charts, CSVs, summaries) into bench/results, release build.
analyses:
	@scripts/install-deps.sh test
	$(SWIFT) build -c release
	.build/release/ds-bench analysis all --out bench/results

## make fuzz: libFuzzer targets (request and response heads, chunked scanner, admin JSON), FUZZ_SECONDS (600) each, in parallel.
FUZZ_SECONDS ?= 600
fuzz:
	fuzz/build.sh
	fuzz/run.sh $(FUZZ_SECONDS)

## make fuzz-smoke: the same targets for 25 s each (CI).
fuzz-smoke:
	fuzz/build.sh
	fuzz/run.sh 25

## make test-sanitize: the whole unit and integration suite under the address, then the thread sanitizer (tests/sanitize.sh).
test-sanitize: deps
	tests/sanitize.sh address thread

deps:
	@scripts/install-deps.sh test

release:
	@scripts/install-deps.sh build
	$(SWIFT) build -c release

build:
	@scripts/install-deps.sh build
	$(SWIFT) build

clean:
	rm -rf .build .build-tsan .build-asan .build-fuzz $(INSTALL_SCRATCH)
