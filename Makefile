# DeployNet. `make demo` runs the demo; `make test` runs every test; `make bench` the benchmarks.
JOBS ?= $(shell nproc)
TEST_DIR := build/test
RELEASE_DIR := build/release

.PHONY: all deps build build-test build-fuzz wasm client test test-unit test-fuzz test-integration demo bench fuzz clean

all: build

deps:
	@scripts/deps.sh

# Optimised binaries (demo, bench).
build: deps
	@cmake -S . -B $(RELEASE_DIR) -DCMAKE_BUILD_TYPE=Release -DDEPLOYNET_BENCH=ON >/dev/null
	@cmake --build $(RELEASE_DIR) -j $(JOBS)

# Test binaries: AddressSanitizer + UndefinedBehaviorSanitizer.
build-test: deps
	@cmake -S . -B $(TEST_DIR) -DCMAKE_BUILD_TYPE=Debug -DDEPLOYNET_SANITIZE=ON >/dev/null
	@cmake --build $(TEST_DIR) -j $(JOBS)

# The routing ring as WebAssembly (Debian's emscripten; NODE_PATH lets it find its JS deps).
EMENV := NODE_PATH=/usr/share/nodejs
wasm: deps
	@$(EMENV) emcmake cmake -S wasm -B build/wasm >/dev/null
	@$(EMENV) cmake --build build/wasm -j $(JOBS)

# The browser client: type-checked, then bundled by esbuild into build/client/.
client: wasm
	@node_modules/.bin/tsc -p client --noEmit
	@node scripts/build-client.mjs

test-unit: build-test
	@cd $(TEST_DIR) && ctest --output-on-failure -j $(JOBS)

# The real binaries over real sockets, the real bittorrent-tracker client over real WebRTC,
# the browser client in Debian's Chromium (playwright-core) against a real origin, and the
# network lab (namespaces, NAT, coturn; needs root). A test that hangs fails after 5 minutes.
test-integration: build-test client
	@DEPLOYNET_SIGNAL=$(CURDIR)/$(TEST_DIR)/server/deploynet-signal \
	  DEPLOYNET_CLI=$(CURDIR)/$(TEST_DIR)/cli/deploynet \
	  DEPLOYNET_LAB_LINK=$(CURDIR)/$(TEST_DIR)/lab/deploynet-lab-link \
	  node --test --test-concurrency=1 --test-timeout=300000 tests/integration/*.test.mjs \
	    tests/client/*.test.mjs tests/browser/*.test.mjs tests/lab/*.test.mjs

# libFuzzer targets (Debian's clang): the frame codec, the protocol parser, the manifest parser.
build-fuzz: deps
	@CXX=clang++ cmake -S fuzz -B build/fuzz -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build/fuzz -j $(JOBS)

test-fuzz: build-fuzz
	@scripts/fuzz.sh 200000

# Long runs: FUZZ_RUNS executions of each target (0 crashes expected).
FUZZ_RUNS ?= 10000000
fuzz: build-fuzz
	@scripts/fuzz.sh $(FUZZ_RUNS)

test: test-unit test-fuzz test-integration

bench: build client
	@scripts/bench.sh

demo: build client
	@scripts/demo.sh

clean:
	rm -rf build
