# Sluice: the two commands. `make run` starts the local stack; `make test` runs every test.
# Everything else is plain CMake presets (dev, asan, release, fuzz): see README.md.
.PHONY: run test deps build-release build-asan bench clean

deps:
	@scripts/install-deps.sh

build-release: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j$$(nproc)

build-asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j$$(nproc)

run: build-release
	@scripts/run-stack.sh build/release

test: build-asan
	ctest --preset asan -j2 --timeout 300

bench: deps
	@loadtest/bench

clean:
	rm -rf build .run
