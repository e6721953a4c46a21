# mdcache build. `make` builds into build/; `make run` and `make test` also
# install missing Debian packages first (tools/install-deps.sh).
#
#   make            daemon, tools, unit tests          -> build/
#   make run        demo against a private redis-server (or $REDIS_URL)
#   make test       unit + integration tests (real redis-server processes)
#   make test-san   the same suite built with ASan+UBSan -> build-san/
#   make bench      mdcache vs the baselines, full matrix -> bench/results/latest.*
#   make bench-smoke  a 30 s correctness pass of the same, and of bench/cluster.py (CI)
#   make soak       10 minutes at 100k symbols, RSS sampled -> bench/results/soak-latest.md
#   make bench-recovery  Redis killed and restarted empty: time until every key is whole
#                   -> bench/results/recovery-latest.*
#   make fuzz       libFuzzer targets (clang)          -> build/fuzz/
#   make fuzz-run   each fuzzer for FUZZ_SECONDS (default 20)
#   make clean

CC       ?= cc
BUILD    ?= build
PKGS     := hiredis liburing libxxhash openssl inih
OPT      ?= -O2 -g
SAN_FLAGS =
ifeq ($(SAN),1)
  BUILD    := build-san
  OPT      := -O1 -g -fno-omit-frame-pointer
  SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -Werror -Iinclude -Itools $(PKG_CFLAGS) $(SAN_FLAGS) -MMD -MP
LDFLAGS  += $(SAN_FLAGS)
LDLIBS   += $(PKG_LIBS) -lpthread -lm

VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
CFLAGS   += -DMD_VERSION='"$(VERSION)"'

LIB_SRC  := $(filter-out src/main.c,$(wildcard src/*.c)) $(wildcard feeds/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
# Shared by the generators (tools/mdfeed, bench/mdgen): model, encoders, targets.
GEN_SRC  := $(wildcard tools/common/*.c)
GEN_OBJ  := $(GEN_SRC:%.c=$(BUILD)/obj/%.o)
# Shared by the operator tools (mdcache-inspect, mdcache-watch).
TOOLLIB_SRC := $(wildcard tools/lib/*.c)
TOOLLIB_OBJ := $(TOOLLIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_SRC := $(wildcard tools/*.c)
TOOLS    := $(TOOL_SRC:tools/%.c=$(BUILD)/%)
# bench/mdgen.c is the load generator, built as build/mdgen; the C
# baseline lives with the other baselines.
BENCH_SRC:= $(filter-out bench/mdgen.c,$(wildcard bench/*.c)) $(wildcard bench/baselines/*.c)
BENCHES  := $(patsubst %.c,$(BUILD)/bench/%,$(notdir $(BENCH_SRC))) $(BUILD)/mdgen
TEST_SRC := $(wildcard tests/test_*.c)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS  := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 20

.PHONY: all run test test-unit test-san fuzz fuzz-run deps bench-deps bench bench-smoke soak bench-recovery clean \
        install uninstall

all: $(BUILD)/mdcache $(TOOLS) $(TESTS) $(BENCHES)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libmdcache.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/mdcache: $(BUILD)/obj/src/main.o $(BUILD)/libmdcache.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/libfeedgen.a: $(GEN_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libmdtool.a: $(TOOLLIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%: $(BUILD)/obj/tools/%.o $(BUILD)/libmdtool.a $(BUILD)/libfeedgen.a $(BUILD)/libmdcache.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libfeedgen.a $(BUILD)/libmdcache.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/bench/%: $(BUILD)/obj/bench/baselines/%.o $(BUILD)/libmdcache.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/mdgen: $(BUILD)/obj/bench/mdgen.o $(BUILD)/libfeedgen.a $(BUILD)/libmdcache.a
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/libmdcache.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -lcmocka -o $@

# libFuzzer needs clang; the library is rebuilt with coverage instrumentation.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -Iinclude $(PKG_CFLAGS) \
               -fsanitize=fuzzer,address,undefined -DMD_FUZZING
build/fuzz/%: tests/fuzz/%.c $(wildcard tests/fuzz/*.h) $(LIB_SRC)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $< $(LIB_SRC) $(PKG_LIBS) -lpthread -lm -o $@

# Installing: binaries, the example configuration (never over one already
# there: it is the operator's), the systemd unit with these paths, docs.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
DOCDIR     ?= $(PREFIX)/share/doc/mdcache
INSTALLED_TOOLS := $(filter-out $(BUILD)/mdfeed,$(TOOLS))

install: $(BUILD)/mdcache $(INSTALLED_TOOLS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/mdcache $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 $(BUILD)/mdcache $(INSTALLED_TOOLS) $(DESTDIR)$(BINDIR)/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/mdcache/mdcache.ini ]; then \
		echo "keeping $(DESTDIR)$(SYSCONFDIR)/mdcache/mdcache.ini; the new example is mdcache.ini.example"; \
		install -m 0644 docs/mdcache.example.ini $(DESTDIR)$(SYSCONFDIR)/mdcache/mdcache.ini.example; \
	else \
		install -m 0644 docs/mdcache.example.ini $(DESTDIR)$(SYSCONFDIR)/mdcache/mdcache.ini; \
	fi
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g' \
		tools/systemd/mdcache.service.in > $(DESTDIR)$(UNITDIR)/mdcache.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/mdcache.service
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	install -d $(DESTDIR)$(DOCDIR)/docs
	install -m 0644 docs/*.md docs/mdcache.example.ini $(DESTDIR)$(DOCDIR)/docs/

# The configuration stays: it is the operator's.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mdcache $(INSTALLED_TOOLS:$(BUILD)/%=$(DESTDIR)$(BINDIR)/%)
	rm -f $(DESTDIR)$(UNITDIR)/mdcache.service
	rm -rf $(DESTDIR)$(DOCDIR)

deps:
	@bash tools/install-deps.sh

run: deps
	@$(MAKE) --no-print-directory all
	@bash tools/run-demo.sh

test: deps
	@$(MAKE) --no-print-directory all
	@bash tests/run.sh $(BUILD)

# The baselines need Debian's python3-redis (in install-deps) and ioredis
# from npm, installed at the version package-lock.json pins.
bench-deps: deps
	@cd bench/baselines && if [ ! -d node_modules/ioredis ]; then npm ci --no-audit --no-fund --loglevel=error; fi

BENCH_ARGS ?=
bench: bench-deps
	@$(MAKE) --no-print-directory all
	@python3 bench/run.py $(BENCH_ARGS)

soak: deps
	@$(MAKE) --no-print-directory all
	@python3 bench/soak.py $(SOAK_ARGS)

RECOVERY_ARGS ?=
bench-recovery: deps
	@$(MAKE) --no-print-directory all
	@python3 bench/recovery.py $(RECOVERY_ARGS)

bench-smoke: bench-deps
	@$(MAKE) --no-print-directory all
	@python3 bench/run.py --smoke --out $(BUILD)/bench-smoke $(BENCH_ARGS)
	@python3 bench/cluster.py --quick --out $(BUILD)/bench-smoke-cluster

test-unit: all
	@bash tests/run.sh $(BUILD) unit

test-san:
	@$(MAKE) --no-print-directory SAN=1 all
	@MD_SAN=1 bash tests/run.sh build-san

fuzz: $(FUZZERS)

fuzz-run: fuzz
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
