GO ?= go
FUZZTIME ?= 10s

.PHONY: test build run fuzz bench clean

# The whole test suite: vet, every test (fuzz seed corpora included) with
# the race detector, and one pass of every benchmark as a smoke test (no
# timing is asserted).
test:
	$(GO) vet ./...
	$(GO) test -race -timeout 12m ./...
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 5m ./...

build:
	$(GO) build -o bin/switchboard ./cmd/switchboard

# Start a server on the embedded defaults (domain localhost, data in ./data).
run:
	$(GO) run ./cmd/switchboard serve

# Run every fuzz target for FUZZTIME each. Minimizing a new input is capped
# at FUZZMINIMIZE calls: Go's default (up to 60 s per input) can take the
# whole run on a target such as FuzzSameAddress, whose kilobyte-long inputs
# go through PRECIS and IDNA, and the fuzzer then reports 0 execs/s.
FUZZMINIMIZE ?= 10000x
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) $$pkg; \
	  done; \
	done

# Benchmarks (one short pass; use BENCHTIME=2s for real figures).
BENCHTIME ?= 1x
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

clean:
	rm -rf bin

# Switchboard against Debian's Prosody and ejabberd on this machine (run as
# root: it installs the packages if missing and starts each server as its
# own user); writes docs/performance.md.
# About 16 minutes on 2 cores. See bench/compare.sh for the knobs.
.PHONY: bench-compare
bench-compare:
	bash bench/compare.sh
