# The README's entry points. Both work on a fresh Debian bookworm machine as root.
#   make demo   install what is missing, build, run a busybox container
#   make test   install what is missing, build (warnings are errors), run every test
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
PREFIX ?= /usr/local

# Debian packages zrun needs to build and test.
DEPS := build-essential cmake ninja-build pkg-config libseccomp-dev libcap-dev \
        nlohmann-json3-dev libcli11-dev libgtest-dev busybox-static clang-format \
        podman conmon catatonit containerd runc uidmap criu \
        qemu-system-x86 python3 zstd \
        clang bpftool libbpf-dev libelf-dev zlib1g-dev
# Only for bench/ comparisons.
BENCH_DEPS := runc crun hyperfine time

.PHONY: all deps build demo test unit integration e2e e2e-runc vm asan install bench format clean

all: build

deps:
	@missing=""; for p in $(DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DZRUN_WERROR=ON

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) -j $(JOBS)

demo: build
	@sh tests/fixtures/demo.sh $(BUILD)

unit: build
	ctest --test-dir $(BUILD) -L unit --output-on-failure -j $(JOBS)

integration: build
	ctest --test-dir $(BUILD) -L integration --output-on-failure

# podman/conmon and containerd driving zrun end to end (exit 77: cannot run here).
e2e: build
	@bash tests/e2e/run.sh --runtime $(BUILD)/zrun; rc=$$?; [ $$rc = 0 ] || [ $$rc = 77 ]

# cgroup v2 enforcement in a qemu guest with Debian's 6.12 kernel (TCG, about a minute;
# exit 77: cannot run here). See tests/vm/README.md.
vm: build
	@bash tests/vm/run.sh $(BUILD)/zrun $(BUILD)/tests/zrun-probe; rc=$$?; [ $$rc = 0 ] || [ $$rc = 77 ]

# The same scenarios with runc: keeps the suite itself honest.
e2e-runc: deps
	bash tests/e2e/run.sh --runtime /usr/bin/runc

# The unit tests again under AddressSanitizer + UBSan.
asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DZRUN_WERROR=ON -DZRUN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	ninja -C $(ASAN_BUILD) -j $(JOBS)
	ctest --test-dir $(ASAN_BUILD) -L unit --output-on-failure -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)
	$(MAKE) e2e
	$(MAKE) vm
	$(MAKE) asan

install: build
	install -D -m 0755 $(BUILD)/zrun $(DESTDIR)$(PREFIX)/bin/zrun

bench: build
	@for p in $(BENCH_DEPS); do dpkg-query -W $$p >/dev/null 2>&1 || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$p; done
	bash bench/run.sh $(BUILD)/zrun

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
