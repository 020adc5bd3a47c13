# ds-lb — the two commands of the README, and their parts.
SHELL := /bin/bash
SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
LISTEN ?= 0.0.0.0:5000
REPLICAS ?= 3

.PHONY: run test deps build release unit-test integration-test tsan-test clean

## make run: install what is missing, build release, run ds-lb on :5000 with 3 local replicas.
run: release
	.build/release/ds-lb --listen $(LISTEN) --replicas $(REPLICAS)

## make test: install what is missing, then the whole suite (unit, integration, thread sanitizer).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(SWIFT) test --scratch-path .build-tsan --sanitize=thread --filter 'DSBalancerTests|DSReactorTests'

deps:
	@scripts/install-deps.sh test

release:
	@scripts/install-deps.sh build
	$(SWIFT) build -c release

build:
	@scripts/install-deps.sh build
	$(SWIFT) build

clean:
	rm -rf .build .build-tsan
