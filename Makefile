# vector_vault — PGXS build (the canonical build of the extension).
#   make && sudo make install      build and install into the server found by pg_config
#   make installcheck               pg_regress against a running server (see scripts/test.sh)
# The pure C++ core, its unit tests, fuzzers and sanitizer builds use CMakeLists.txt.

EXTENSION = vector_vault
EXTVERSION = 0.2.0
MODULE_big = vector_vault

SRC_DIRS = src/core src/pg src/keys src/auth src/vault src/type src/index src/admin
SRCS = $(sort $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.cpp)))
OBJS = $(SRCS:.cpp=.o)

SQL_SOURCES = $(sort $(wildcard src/sql/*.sql))
DATA_built = build/$(EXTENSION)--$(EXTVERSION).sql
# Released versions keep their install scripts as shipped (sql/released/, never edited), and every
# update script is written and reviewed by hand (sql/updates/); test/t/095_upgrade.pl and
# .ci/check-upgrade-paths keep them honest. See README "Upgrading".
DATA = $(sort $(wildcard sql/released/$(EXTENSION)--*.sql) $(wildcard sql/updates/$(EXTENSION)--*--*.sql))

REGRESS = $(shell sed -n 's/^test: *//p' test/regress_schedule)
REGRESS_OPTS = --inputdir=. --load-extension=$(EXTENSION)

PG_CONFIG ?= pg_config
PG_INCLUDE_SERVER := $(shell $(PG_CONFIG) --includedir-server)

# Postgres headers as system headers: our own code stays -Wall -Wextra -Werror clean while the
# server headers' C-isms (register, unused parameters in inline functions) are not ours to fix.
PG_CPPFLAGS = -I$(CURDIR)/src -isystem $(PG_INCLUDE_SERVER) -isystem /usr/include/hnswlib
PG_CXXFLAGS = -std=c++17 -O2 -Wall -Wextra -Werror -fvisibility=hidden \
	-fvisibility-inlines-hidden -fno-strict-aliasing
SHLIB_LINK = -lstdc++ -lcrypto -lpthread -Wl,--version-script=$(CURDIR)/src/exports.map

# No LLVM bitcode: PGXS would compile every .cpp again with clang and without PG_CXXFLAGS, and
# nothing here benefits from JIT inlining.
override with_llvm = no
# Track header dependencies (core templates are compiled into bridge objects).
override autodepend = yes

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)


# g++ warns that some of the server's C-only flags do not apply to C++; drop them for C++.
override CXXFLAGS := $(filter-out -Wmissing-prototypes -Wdeclaration-after-statement,$(CXXFLAGS))

$(DATA_built): $(SQL_SOURCES)
	@mkdir -p build
	cat $(SQL_SOURCES) > $@

all: $(DATA_built)

# compile_commands.json for clangd and clang-tidy over every source PGXS compiles (core included;
# CMake writes build/core/compile_commands.json for the unit tests and fuzzers): `make compdb`.
.PHONY: compdb
compdb:
	@VV_CC='$(COMPILE.cc)' VV_SRCS='$(SRCS)' VV_DIR='$(CURDIR)' python3 -c 'import json, os; \
		d = os.environ["VV_DIR"]; cc = os.environ["VV_CC"]; \
		srcs = os.environ["VV_SRCS"].split(); \
		json.dump([{"directory": d, "file": f, "command": "%s -c -o %s %s" % (cc, f[:-4] + ".o", f)} \
			for f in srcs], open("compile_commands.json", "w"), indent=1); \
		print("compile_commands.json: %d sources" % len(srcs))'

FORMAT_FILES = $(SRCS) $(wildcard src/*/*.h test/unit/*.cpp test/unit/*.h test/fuzz/*.cpp test/bench/*.cpp test/bench/*.c)
.PHONY: format format-check
format:
	clang-format -i $(FORMAT_FILES)
format-check:
	bash .ci/check-format
