# Kaiwa: build, run locally, test. Each step says what it does.
#
#   make build   compile bin/kaiwa
#   make run     install what is missing (scripts/deps.sh run), build, and
#                start the whole stack with bin/kaiwa dev (Ctrl-C stops it);
#                DEV_ARGS="..." passes flags to kaiwa dev
#   make test    install what is missing (scripts/deps.sh test), run every
#                test against a real MySQL (scripts/with-test-mysql.sh),
#                then go vet
#   make fuzz    run every fuzz target for FUZZTIME each (default 20s)
#   make bench   run the standard load scenarios (scripts/bench.sh, about
#                five minutes) and write the results into docs/benchmarks.md
#   make clean   remove bin/ and var/ (the dev stack's data included)

SHELL := /bin/bash
# Go's default install directory, for machines where it is not on PATH.
export PATH := $(PATH):/usr/local/go/bin

GO ?= go
FUZZTIME ?= 20s
DEV_ARGS ?=

.PHONY: build run test fuzz bench clean

build:
	@echo "==> go build -o bin/kaiwa ./cmd/kaiwa"
	@$(GO) build -o bin/kaiwa ./cmd/kaiwa

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
	@echo "==> go vet ./..."
	@$(GO) vet ./...

fuzz:
	@echo "==> fuzzing every Fuzz target for $(FUZZTIME) each"
	@FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

bench:
	@echo "==> scripts/bench.sh: the standard load scenarios on a loopback stack; writes docs/benchmarks.md"
	@scripts/bench.sh

clean:
	@echo "==> rm -rf bin var"
	@rm -rf bin var
