# Switchyard: the two commands are `make demo` and `make test`; both set up a fresh machine first.
BUILD   ?= build
PYTHON  ?= python3
JOBS    ?= 2
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

APT_PACKAGES := cmake ninja-build g++ pkg-config libonnx-dev libprotobuf-dev protobuf-compiler \
                libgtest-dev libgmock-dev libcli11-dev nlohmann-json3-dev libfmt-dev libzip-dev zlib1g-dev libpng-dev libdnnl-dev \
                libgrpc++-dev protobuf-compiler-grpc libcpp-httplib-dev \
                dataset-fashion-mnist
# For regenerating the model and fixtures only (needs Debian's torch): make train / make fixtures.
APT_TORCH_PACKAGES := python3-torch python3-numpy python3-onnx

.PHONY: all deps build test test-sanitizers fuzz demo compare serve-bench fusion-table accuracy conformance fixtures train train-spatial clean
FUZZ_SECONDS ?= 60

all: build

deps:
	@dpkg -s $(APT_PACKAGES) >/dev/null 2>&1 || { \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES) >/dev/null; }
	@$(PYTHON) -c "import numpy, pytest, onnx, onnxruntime, pybind11, ml_dtypes, PIL, tritonclient.grpc, tritonclient.http; assert onnx.__version__ == '1.16.2'" 2>/dev/null || { \
	  echo "installing Python packages from requirements.txt"; \
	  $(PYTHON) -m pip install -q -r requirements.txt; }

$(BUILD)/build.ninja: CMakeLists.txt tests/CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$$(command -v $(PYTHON))

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	SWITCHYARD_BIN=$(abspath $(BUILD))/switchyard PYTHONPATH=$(abspath $(BUILD))/python $(PYTHON) -m pytest -q tests/python

# AddressSanitizer + UndefinedBehaviorSanitizer over the C++ tests and the CLI tests, and
# ThreadSanitizer over the concurrency and async tests (own build folders, Debug).
test-sanitizers: deps
	cmake -S . -B $(BUILD)-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSWITCHYARD_SANITIZE=ON -DSWITCHYARD_PYTHON=OFF \
	  -DPython3_EXECUTABLE=$$(command -v $(PYTHON))
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j $(JOBS)
	SWITCHYARD_BIN=$(abspath $(BUILD))-asan/switchyard $(PYTHON) -m pytest -q tests/python \
	  --ignore=tests/python/test_python_api.py --ignore=tests/python/test_examples.py -k "not python_api"
	cmake -S . -B $(BUILD)-tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSWITCHYARD_TSAN=ON -DSWITCHYARD_PYTHON=OFF \
	  -DPython3_EXECUTABLE=$$(command -v $(PYTHON))
	cmake --build $(BUILD)-tsan -j $(JOBS) --target switchyard_tests
	TSAN_OPTIONS=halt_on_error=1 $(BUILD)-tsan/tests/switchyard_tests --gtest_filter='Concurrency*:Async*:ThreadPool*:ServerBatcher*'

# libFuzzer (clang, ASan + UBSan) on the model loader + graph passes, .npy and .npz readers.
fuzz: deps
	@dpkg -s clang libclang-rt-14-dev >/dev/null 2>&1 || $(SUDO) apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
	tests/fuzz/run_fuzzers.sh $(FUZZ_SECONDS) $(BUILD)-fuzz

demo: build
	@echo "== switchyard inspect models/seed_classifier.onnx"
	@$(BUILD)/switchyard inspect models/seed_classifier.onnx | head -12
	@echo
	@echo "== switchyard eval models/seed_classifier.onnx --dataset fashion-mnist --latency"
	@$(BUILD)/switchyard eval models/seed_classifier.onnx --dataset fashion-mnist --batch 64 --latency | tee $(BUILD)/demo.txt
	@$(PYTHON) scripts/check_demo.py models/seed_classifier.json $(BUILD)/demo.txt

# Side by side with ONNX Runtime and OpenVINO (2 threads, same inputs): bench/results/compare.json.
# ISA=avx2 (or portable) caps Switchyard's kernels, e.g. to measure the AVX2 path on an AVX-512 machine.
ISA ?= native
compare: build
	@$(PYTHON) -c "import onnxruntime, openvino" 2>/dev/null || $(PYTHON) -m pip install -q -r bench/requirements.txt
	$(PYTHON) bench/compare.py --threads 2 --isa $(ISA)
	$(PYTHON) bench/spatial.py --threads 2 --isa $(ISA)

# `switchyard serve` under 1/8/64 concurrent clients, batching on and off, next to in-process runs
# (gRPC and HTTP through the C++ load client, HTTP also through Debian's wrk): bench/results/serve.json.
serve-bench: build
	@command -v wrk >/dev/null || $(SUDO) apt-get install -y -qq wrk >/dev/null
	$(PYTHON) bench/serve_load.py

# MoE fusion on the export corpus (tests/corpus), fused vs ONNX Runtime on each file: docs/fusion.md.
fusion-table: build
	@$(PYTHON) -c "import onnxruntime" 2>/dev/null || $(PYTHON) -m pip install -q -r bench/requirements.txt
	PYTHONPATH=$(abspath $(BUILD))/python $(PYTHON) bench/fusion.py --threads 2

# Accuracy of every precision against FP32 (seed classifier on Fashion-MNIST, MoE layers): docs/accuracy.md.
accuracy: build
	$(PYTHON) bench/accuracy.py

# Regenerates docs/conformance.md (the ctest run writes the same table to $(BUILD)/conformance.md).
conformance: build
	$(BUILD)/tests/switchyard_conformance "$$($(PYTHON) -c 'import onnx, os; print(os.path.dirname(onnx.__file__))')/backend/test/data/node" \
	  tests/conformance/known_failures.txt docs/conformance.md

# Retrain the shipped classifier / re-export the fixtures (Debian's torch under /usr/bin/python3).
train:
	@dpkg -s $(APT_TORCH_PACKAGES) >/dev/null 2>&1 || $(SUDO) apt-get install -y -qq $(APT_TORCH_PACKAGES)
	cd scripts && /usr/bin/python3 train_seed_classifier.py

fixtures:
	@dpkg -s $(APT_TORCH_PACKAGES) >/dev/null 2>&1 || $(SUDO) apt-get install -y -qq $(APT_TORCH_PACKAGES)
	cd scripts && /usr/bin/python3 make_fixtures.py

# Retrain the block-routed x4 upsampler (models/spatial_moe, ~10 min on 2 cores) and rewrite its fixtures,
# and the spatial-MoE variant corpus (tests/fixtures/spatial/corpus).
train-spatial:
	@dpkg -s $(APT_TORCH_PACKAGES) >/dev/null 2>&1 || $(SUDO) apt-get install -y -qq $(APT_TORCH_PACKAGES)
	cd scripts && /usr/bin/python3 train_spatial_moe.py && /usr/bin/python3 spatial_moe_corpus.py

clean:
	rm -rf $(BUILD)
