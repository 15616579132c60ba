# The two commands of the README:
#   make run    install what is missing, build, serve the demo site, run the example jobs once
#   make dashboard  the same, then keep the daemon running: http://127.0.0.1:9184/ui/
#   make test   install what is missing, build, run every test
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=

FUZZ_SECONDS ?= 60

.PHONY: all deps build run dashboard test bench fuzz package clean

all: build

deps:
	@bash scripts/install-deps

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	@bash scripts/demo $(BUILD)

dashboard: build
	@bash scripts/demo $(BUILD) --dashboard

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The .deb (docs/operations.md): build/scraperd_<version>_<arch>.deb
package: build
	cd $(BUILD) && cpack -G DEB

# Micro-benchmarks, then scraperd against aiohttp, Scrapy and wrk (docs/performance.md).
bench: build
	$(BUILD)/bench/bench_engine
	$(BUILD)/bench/bench_config
	$(BUILD)/bench/bench_writer
	bench/run --build $(BUILD)

# libFuzzer over the config loader (seeded with the bad-file corpus and the examples), then
# over CSS translation + extraction (seeded with the test pages): FUZZ_SECONDS each.
fuzz: deps
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DSCRAPERD_FUZZ=ON \
	  -DSCRAPERD_TESTS=OFF -DSCRAPERD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build-fuzz -j $(JOBS) --target config_fuzz extract_fuzz robots_fuzz
	mkdir -p build-fuzz/corpus/config build-fuzz/corpus/extract build-fuzz/corpus/robots
	cp tests/config/bad/*.yaml examples/jobs.yaml build-fuzz/corpus/config/
	cp tests/data/robots/* build-fuzz/corpus/robots/
	for f in tests/pages/*.* tests/pages/cssselect/*.html tests/pages/cssselect/*.xml; do \
	  { echo 'div > a[href]:not(.x), h1 + p::text, li:nth-child(2n+1)'; cat $$f; } \
	    > build-fuzz/corpus/extract/$$(basename $$f); done
	n=0; while IFS= read -r s; do n=$$((n + 1)); \
	  { echo "$$s"; cat tests/pages/cssselect/html_ids.html; } > build-fuzz/corpus/extract/css-$$n; \
	  { echo "$$s"; cat examples/site/feed.xml; } > build-fuzz/corpus/extract/feed-$$n; \
	  done < tests/fuzz/selectors.txt
	build-fuzz/tests/fuzz/config_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 build-fuzz/corpus/config
	build-fuzz/tests/fuzz/extract_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -dict=tests/fuzz/css.dict build-fuzz/corpus/extract
	build-fuzz/tests/fuzz/robots_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 build-fuzz/corpus/robots

clean:
	rm -rf $(BUILD) build-fuzz
