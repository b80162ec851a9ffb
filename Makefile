# Kaiwa: build, run locally, test. Each step says what it does.
#
#   make build   compile bin/kaiwa, and build the TypeScript SDK (sdk/js,
#                scripts/deps-js.sh build) when npm is there
#   make run     install what is missing (scripts/deps.sh run), build, and
#                start the whole stack with bin/kaiwa dev (Ctrl-C stops it);
#                DEV_ARGS="..." passes flags to kaiwa dev
#   make test    install what is missing (scripts/deps.sh test), run every
#                test against a real MySQL (scripts/with-test-mysql.sh),
#                the TypeScript SDK's unit tests (npm test in sdk/js), then
#                go vet
#   make test-faults  build bin/kaiwa and run the fault suite
#                (internal/faults, KAIWA_FAULTS=1): a real stack with its
#                own MariaDB and NATS processes, one fault at a time under
#                v1 and v2 chat; prints one line of figures per fault
#                (about five minutes)
#   make test-cluster  the multi-host cluster (scripts/cluster.sh: hosts in
#                network namespaces, built from deploy/) under failovers:
#                a NATS leader killed, a UA host cut off, an API host and a
#                UA host killed, MySQL stopped; as root (about 6 minutes)
#   make cluster-up, cluster-down  the same cluster to try by hand
#                (var/cluster; scripts/cluster.sh status)
#   make soak    the same kind of stack under churn, chat, presence and
#                moderation for SOAK (default 5m); samples every process's
#                memory, goroutines and open files and requires them flat
#   make fuzz    run every fuzz target for FUZZTIME each (default 20s)
#   make bench   run the standard load scenarios through nginx with TLS
#                (scripts/bench.sh, about twelve minutes) and write the
#                results into docs/benchmarks.md
#   make release build kaiwa for linux/amd64 and linux/arm64 into dist/
#                (static, CGO_ENABLED=0, -trimpath, the version from git
#                describe), then check them: file names each architecture,
#                each prints its version (arm64 under qemu-user-static), one
#                package's tests pass under emulation, and the container
#                image (deploy/Containerfile, buildah) runs kaiwa version;
#                scripts/deps.sh release installs file, qemu-user-static
#                and buildah
#   make image   the container image kaiwa:VERSION from dist/ (scripts/image.sh)
#   make clean   remove bin/, dist/ and var/ (the dev stack's data included)

SHELL := /bin/bash
# Go's default install directory, for machines where it is not on PATH.
export PATH := $(PATH):/usr/local/go/bin

GO ?= go
# The build's version, printed by kaiwa version and sent in heartbeats.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
RELEASE_ARCHES ?= amd64 arm64
FUZZTIME ?= 20s
SOAK ?= 5m
DEV_ARGS ?=

.PHONY: build run test test-faults test-cluster cluster-up cluster-down soak fuzz bench release image clean

build:
	@echo "==> go build -o bin/kaiwa ./cmd/kaiwa ($(VERSION))"
	@$(GO) build -ldflags "-X main.buildVersion=$(VERSION)" -o bin/kaiwa ./cmd/kaiwa
	@scripts/deps-js.sh build

run:
	@echo "==> checking dependencies for run (scripts/deps.sh run)"
	@scripts/deps.sh run
	@$(MAKE) --no-print-directory build
	@echo "==> starting the dev stack: bin/kaiwa dev $(DEV_ARGS)"
	@bin/kaiwa dev $(DEV_ARGS)

test:
	@echo "==> checking dependencies for test (scripts/deps.sh test)"
	@scripts/deps.sh test
	@echo "==> go test -count=1 -timeout 15m ./... (MySQL from scripts/with-test-mysql.sh)"
	@scripts/with-test-mysql.sh $(GO) test -count=1 -timeout 15m ./...
	@echo "==> npm test in sdk/js (the TypeScript SDK's unit tests, node --test)"
	@cd sdk/js && npm test --silent
	@echo "==> go vet ./..."
	@$(GO) vet ./...

test-faults:
	@echo "==> checking dependencies (scripts/deps.sh run: nginx and the MariaDB server binaries)"
	@scripts/deps.sh run
	@$(MAKE) --no-print-directory build
	@echo "==> the fault suite: KAIWA_FAULTS=1 go test -run TestFaults ./internal/faults"
	@KAIWA_FAULTS=1 KAIWA_TEST_BIN=$(CURDIR)/bin/kaiwa $(GO) test -count=1 -v -timeout 15m -run 'TestFaults' ./internal/faults

test-cluster:
	@echo "==> checking dependencies (scripts/deps.sh cluster: nginx, MariaDB, iproute2, openssl)"
	@scripts/deps.sh cluster
	@$(MAKE) --no-print-directory build
	@echo "==> the cluster suite: KAIWA_CLUSTER=1 go test -run TestCluster ./internal/faults (scripts/cluster.sh, as root)"
	@KAIWA_CLUSTER=1 KAIWA_TEST_BIN=$(CURDIR)/bin/kaiwa $(GO) test -count=1 -v -timeout 15m -run 'TestCluster' ./internal/faults

cluster-up:
	@scripts/deps.sh cluster
	@$(MAKE) --no-print-directory build
	@scripts/cluster.sh up

cluster-down:
	@scripts/cluster.sh down

soak:
	@echo "==> checking dependencies (scripts/deps.sh run: nginx and the MariaDB server binaries)"
	@scripts/deps.sh run
	@$(MAKE) --no-print-directory build
	@echo "==> the soak for $(SOAK): KAIWA_SOAK=$(SOAK) go test -run TestSoak ./internal/faults"
	@KAIWA_SOAK=$(SOAK) KAIWA_TEST_BIN=$(CURDIR)/bin/kaiwa $(GO) test -count=1 -v -timeout 60m -run 'TestSoak' ./internal/faults

fuzz:
	@echo "==> fuzzing every Fuzz target for $(FUZZTIME) each"
	@FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

bench:
	@echo "==> checking dependencies (scripts/deps.sh run: nginx and the MariaDB server binaries)"
	@scripts/deps.sh run
	@echo "==> scripts/bench.sh: the standard load scenarios on a loopback stack, through nginx with TLS; writes docs/benchmarks.md"
	@scripts/bench.sh

release:
	@echo "==> checking dependencies for release (scripts/deps.sh release: file, qemu-user-static, buildah)"
	@scripts/deps.sh release
	@for arch in $(RELEASE_ARCHES); do \
		echo "==> CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -trimpath -ldflags '-s -w -X main.buildVersion=$(VERSION)' -o dist/kaiwa-linux-$$arch ./cmd/kaiwa"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags "-s -w -X main.buildVersion=$(VERSION)" \
			-o dist/kaiwa-linux-$$arch ./cmd/kaiwa || exit 1; \
	done
	@echo "==> the release checks: KAIWA_RELEASE_DIR=dist go test -run TestRelease ./cmd/kaiwa"
	@KAIWA_RELEASE_DIR=$(CURDIR)/dist KAIWA_RELEASE_VERSION=$(VERSION) $(GO) test -count=1 -v -run 'TestRelease' ./cmd/kaiwa

image:
	@VERSION=$(VERSION) scripts/image.sh

clean:
	@echo "==> rm -rf bin dist var"
	@rm -rf bin dist var
