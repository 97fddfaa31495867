# DeployNet. `make demo` runs the demo; `make test` runs every test; `make bench` the benchmarks.
JOBS ?= $(shell nproc)
TEST_DIR := build/test
RELEASE_DIR := build/release

.PHONY: all deps build build-test build-fuzz wasm client test test-unit test-fuzz test-integration demo bench fuzz coverage install install-files package lint clean

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
# the browser client in Debian's Chromium (playwright-core) against a real origin, the browser
# tests once more with Firefox visitors (Debian's firefox-esr, puppeteer-core over WebDriver
# BiDi; mixed Chromium/Firefox swarms run in the first pass), and the network lab (namespaces,
# NAT, coturn; needs root). A test that hangs fails after 5 minutes.
FIREFOX_TESTS = $(filter-out tests/browser/engines.test.mjs,$(wildcard tests/browser/*.test.mjs))
TEST_ENV = DEPLOYNET_SIGNAL=$(CURDIR)/$(TEST_DIR)/server/deploynet-signal \
  DEPLOYNET_CLI=$(CURDIR)/$(TEST_DIR)/cli/deploynet \
  DEPLOYNET_LAB_LINK=$(CURDIR)/$(TEST_DIR)/lab/deploynet-lab-link
test-integration: build-test client
	@$(TEST_ENV) node --test --test-concurrency=1 --test-timeout=300000 tests/integration/*.test.mjs \
	    tests/client/*.test.mjs tests/browser/*.test.mjs tests/lab/*.test.mjs
	@echo "Browser tests with Firefox visitors:"
	@$(TEST_ENV) DEPLOYNET_ENGINE=firefox node --test --test-concurrency=1 --test-timeout=300000 $(FIREFOX_TESTS)

# libFuzzer targets (Debian's clang): the frame codec, the protocol parser, the manifest parser,
# the PROXY header; and a JS fuzzer of the browser client's wire decoder.
build-fuzz: deps
	@CXX=clang++ cmake -S fuzz -B build/fuzz -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build/fuzz -j $(JOBS)

test-fuzz: build-fuzz client
	@scripts/fuzz.sh 200000

# Long runs: FUZZ_RUNS executions of each target (0 crashes expected).
FUZZ_RUNS ?= 10000000
fuzz: build-fuzz client
	@scripts/fuzz.sh $(FUZZ_RUNS)

test: test-unit test-fuzz test-integration

# clang-format, clang-tidy (bugprone, performance) and Biome (TypeScript lint and format).
lint: deps
	@scripts/lint.sh

# The browser client as an npm package: build/deploynet-client-VERSION.tgz (and docs/client-api.md).
package: client
	@node scripts/package-client.mjs --docs

# Line coverage of core/ and server/ under the unit and integration tests (gcov, gcovr): the
# same tests as `make test` run against an instrumented build.
COV_DIR := build/coverage
coverage: deps client
	@cmake -S . -B $(COV_DIR) -DCMAKE_BUILD_TYPE=Debug -DDEPLOYNET_COVERAGE=ON >/dev/null
	@cmake --build $(COV_DIR) -j $(JOBS)
	@find $(COV_DIR) -name '*.gcda' -delete
	@cd $(COV_DIR) && ctest -j $(JOBS) >/dev/null
	@DEPLOYNET_SIGNAL=$(CURDIR)/$(COV_DIR)/server/deploynet-signal \
	  DEPLOYNET_CLI=$(CURDIR)/$(COV_DIR)/cli/deploynet \
	  DEPLOYNET_LAB_LINK=$(CURDIR)/$(COV_DIR)/lab/deploynet-lab-link \
	  node --test --test-concurrency=1 --test-timeout=300000 tests/integration/*.test.mjs \
	    tests/client/*.test.mjs tests/browser/*.test.mjs tests/lab/*.test.mjs >$(COV_DIR)/tests.log 2>&1 || \
	  { tail -30 $(COV_DIR)/tests.log; exit 1; }
	@gcovr -r . --filter 'core/' --filter 'server/' --object-directory $(COV_DIR) -s \
	  --html-details $(COV_DIR)/coverage.html | tail -3

bench: build client
	@scripts/bench.sh

demo: build client
	@scripts/demo.sh

# deploynet-signal and deploynet in PREFIX/bin, the browser client in PREFIX/share/deploynet/client,
# the systemd unit in PREFIX/lib/systemd/system, the nginx configuration in
# PREFIX/share/deploynet/nginx. DESTDIR for staging.
PREFIX ?= /usr/local
INSTALL_FROM ?= $(RELEASE_DIR)
install: build client
	@$(MAKE) --no-print-directory install-files

install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/deploynet/client \
	  $(DESTDIR)$(PREFIX)/share/deploynet/nginx $(DESTDIR)$(PREFIX)/lib/systemd/system
	install -m 0755 $(INSTALL_FROM)/server/deploynet-signal $(INSTALL_FROM)/cli/deploynet $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 build/client/deploynet.js build/client/deploynet.mjs build/client/deploynet-sw.js build/client/deploynet-boot.js \
	  build/client/deploynet_ring.wasm $(DESTDIR)$(PREFIX)/share/deploynet/client/
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|' deploy/deploynet-signal.service \
	  >$(DESTDIR)$(PREFIX)/lib/systemd/system/deploynet-signal.service
	install -m 0644 deploy/nginx-deploynet-signal.conf $(DESTDIR)$(PREFIX)/share/deploynet/nginx/

clean:
	rm -rf build
