# ds-lb — the two commands of the README, and their parts.
SHELL := /bin/bash
SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
LISTEN ?= 0.0.0.0:5000
REPLICAS ?= 3

.PHONY: run test deps build release unit-test integration-test tsan-test clean images docker-e2e

## make run: install what is missing, build release, run ds-lb on :5000 with 3 local replicas.
run: release
	.build/release/ds-lb --listen $(LISTEN) --replicas $(REPLICAS)

## make test: install what is missing, then the whole suite (unit, integration, thread sanitizer).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(SWIFT) test --scratch-path .build-tsan --sanitize=thread --filter 'DSBalancerTests|DSReactorTests'
	$(MAKE) docker-e2e

## make images: ds-server:latest and ds-lb:latest FROM scratch, no registry (docker/build-images.sh).
images:
	@scripts/install-deps.sh build
	docker/build-images.sh

## make docker-e2e: the Docker driver end to end on a real engine (installs and starts one if needed).
docker-e2e:
	docker/e2e-test.sh

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
