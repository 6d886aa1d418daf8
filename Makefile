# pyexec: run untrusted Python behind a CGI, in a kernel sandbox.
#
#   make            build pyexec.cgi (and pyexec-sandbox), pyexec-admin and
#                   pyexec-mcp
#   make serve      build them, serve pyexec.cgi with lighttpd on
#                   127.0.0.1:8080 (PORT= to change), installing lighttpd
#                   first if it is missing (as root); MODE=fastcgi serves
#                   pyexec-fcgi instead
#   make test       install missing packages (as root), build, run every test
#   make install    PREFIX=/usr/local, DESTDIR= for staging
#   make deps       apt-get the build, serve and test packages
#   make loadtest   60 s of mixed load through lighttpd, then its checks
#   make bench      benchmark against baselines into bench/RESULTS.md
#                   (BENCH_QUICK=1: a smoke run)
#   make print-flags  show the flags that reach the compiler and linker
#   make clean
#
# V=1 shows the full command lines of a build.
#
# DEV=1 (or CI=true) turns warnings into errors. SANITIZE=1 builds every
# binary with ASan and UBSan into build-san/.

# Debian's Python, never one that happens to be first on PATH (pyenv, venv):
# the pkg-config search path is pinned to the system's directories.
MULTIARCH  := $(shell gcc -print-multiarch 2>/dev/null)
PKG_CONFIG := env -u PKG_CONFIG_PATH PKG_CONFIG_LIBDIR=/usr/lib/$(MULTIARCH)/pkgconfig:/usr/lib/pkgconfig:/usr/share/pkgconfig /usr/bin/pkg-config
PKGS       := python3-embed libseccomp libcjson sqlite3 libpq
PYVER      := $(shell $(PKG_CONFIG) --modversion python3-embed 2>/dev/null)
PYSTDLIB   := /usr/lib/python$(PYVER)
PYTHON     := /usr/bin/python3

CC ?= cc
# Quiet builds: one line per file ("CC build/cgi/main.o"), as the kernel
# and git print them; V=1 shows the full command lines. Each rule says
# what it makes with $(call say,TAG) before its command, which that
# line's @ then keeps quiet; warnings and errors always show in full.
ifeq ($(V),1)
say  =
else
say  = @printf '  %-4s %s\n' '$(1)' '$@';
endif
WARN    := -Wall -Wextra -Wformat=2 -Wformat-security -Wstrict-prototypes \
           -Wmissing-prototypes -Wvla -Wno-missing-field-initializers
ifneq ($(filter 1,$(DEV))$(filter true,$(CI)),)
WARN    += -Werror
endif
# Hardening, after the OpenSSF "Compiler Options Hardening Guide for C".
HARDEN  := -fstack-protector-strong -fstack-clash-protection -fcf-protection \
           -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3 -fPIE
HARDEN_LD := -pie -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack
OPT     := -O2 -g
# SANITIZE=1: the unit tests, pyexec-admin and pyexec.cgi (the broker:
# the whole black-box suite runs against it) with ASan and UBSan, in
# build-san/; pyexec-sandbox and its test variant with UBSan alone,
# objects in build-san/ub/ (the programs in build-san/bin/). ASan's shadow
# memory (terabytes of reserved address space, mapped when pyexec-sandbox
# starts) would leave no room under the child's RLIMIT_AS, the memory
# limit the black-box tests prove: no code could run.
ifeq ($(SANITIZE),1)
OPT     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
CGI_OPT := -O1 -g -fsanitize=undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
BUILD   := build-san
CBUILD  := build-san/ub
else
CGI_OPT := $(OPT)
BUILD   := build
CBUILD  := build
endif
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null | sed 's/-I/-isystem /g')
# libcrypto statically: only SHA-256 is used, and the shared library would
# cost about 0.5 ms of loading at every request (sql/digest.c).
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) \
              -Wl,-Bstatic -lcrypto -Wl,-Bdynamic
# pyexec.cgi loads no Python: libpython3.11.so costs ~0.7 ms of loading
# and relocation at every start.
BROKER_LIBS := $(shell $(PKG_CONFIG) --libs libseccomp libcjson sqlite3 libpq 2>/dev/null) \
              -Wl,-Bstatic -lcrypto -Wl,-Bdynamic
# pyexec-sandbox links Debian's static libpython, the one /usr/bin/python3
# is built from (optimized: the program runs ~20% faster than on the
# shared library). It is not position-independent, so neither is
# pyexec-sandbox (-no-pie); -E exports its symbols to extension modules.
PYLIB_A     := $(PYSTDLIB)/config-$(PYVER)-$(MULTIARCH)/libpython$(PYVER).a
SANDBOX_LIBS := $(PYLIB_A) -lexpat -lz -lm \
              $(shell $(PKG_CONFIG) --libs libseccomp 2>/dev/null)
DEFS    := -D_GNU_SOURCE -DOPENSSL_API_COMPAT=10101 -DPYEXEC_PYTHON_HOME='L"/usr"' \
           -DPYEXEC_PYTHON_STDLIB='L"$(PYSTDLIB)"' \
           -DPYEXEC_PYTHON_STDLIB_NARROW='"$(PYSTDLIB)"' \
           -DPYEXEC_PYTHON_VERSION='"$(PYVER)"'
CFLAGS_BASE := -std=gnu11 $(WARN) $(HARDEN) $(DEFS) $(PKG_CFLAGS) -MMD -MP $(CFLAGS)
CFLAGS_ALL  := $(OPT) $(CFLAGS_BASE)
LDFLAGS_ALL := $(OPT) $(HARDEN_LD) $(LDFLAGS)
CFLAGS_CGI  := $(CGI_OPT) $(CFLAGS_BASE)
LDFLAGS_CGI := $(CGI_OPT) $(HARDEN_LD) $(LDFLAGS)
LDFLAGS_SANDBOX := $(CGI_OPT) -no-pie -Wl,-E -Wl,-z,relro -Wl,-z,now \
                   -Wl,-z,noexecstack $(LDFLAGS)

CGI_SRC     := cgi/main.c cgi/config.c cgi/http.c cgi/request.c cgi/job.c \
               cgi/jsonscan.c cgi/jsonw.c cgi/utf8.c cgi/response.c \
               cgi/identity.c cgi/slots.c cgi/cancel.c cgi/cidr.c \
               cgi/client.c cgi/mcp.c cgi/mcp_span.c cgi/mcp_tool.c \
               cgi/metrics.c
# pyexec-fcgi: the CGI's request flow (main.c without its main()), the
# FastCGI supervisor and workers, and the broker's side of the zygote.
FCGI_SRC    := cgi/fcgi_main.c cgi/fcgi_worker.c sandbox/zygote_ctl.c
SQL_SRC     := sql/store.c sql/users.c sql/runs.c sql/settings.c sql/digest.c \
               sql/manage.c sql/textclean.c sql/backup.c \
               sql/metrics.c sql/totals.c sql/backend.c sql/sqlite_ops.c \
               sql/pg_conn.c sql/pg_query.c sql/pg_users.c sql/pg_runs.c \
               sql/pg_manage.c sql/pg_metrics.c sql/pg_roles.c
MCP_SRC     := mcp/pyexec-mcp.c mcp/stdio_relay.c cgi/mcp_span.c
ADMIN_SRC   := admin/admin.c admin/util.c admin/cmd_init.c admin/cmd_user.c \
               admin/cmd_quota.c admin/cmd_config.c admin/cmd_logs.c \
               admin/cmd_stats.c admin/cmd_cost.c admin/cmd_prune.c \
               admin/cmd_doctor.c admin/cmd_backup.c admin/cmd_roles.c \
               admin/fcgi_probe.c
# The broker's side of the sandbox (in pyexec.cgi), and the child's
# (pyexec-sandbox, whose main() is in child.c); a few files are in both.
SPAWN_SRC   := sandbox/spawn.c sandbox/fds.c sandbox/handoff.c \
               sandbox/result.c sandbox/seccomp.c sandbox/trace.c \
               sandbox/profile.c
CHILD_SRC   := sandbox/child.c sandbox/rlimit.c sandbox/ns.c \
               sandbox/landlock.c sandbox/seccomp.c sandbox/audit.c \
               sandbox/pyrun.c sandbox/pyerr.c sandbox/allowlist.c \
               sandbox/result.c sandbox/handoff.c sandbox/trace.c \
               sandbox/profile.c sandbox/standin.c sandbox/zygote.c \
               sandbox/fds.c
SANDBOX_SRC := $(sort $(SPAWN_SRC) $(CHILD_SRC))
# Objects whose behaviour the test-only switch changes.
PYLAYER_SRC := sandbox/child.c sandbox/pyrun.c

CGI_OBJ     := $(CGI_SRC:%.c=$(BUILD)/%.o)
SQL_OBJ     := $(SQL_SRC:%.c=$(BUILD)/%.o) $(BUILD)/sql/schema.o \
               $(BUILD)/sql/pg_schema.o
ADMIN_OBJ   := $(ADMIN_SRC:%.c=$(BUILD)/%.o)
MCP_OBJ     := $(MCP_SRC:%.c=$(BUILD)/%.o)
SANDBOX_OBJ := $(SANDBOX_SRC:%.c=$(BUILD)/%.o) $(BUILD)/sandbox/seccomp_bpf.o
# The objects of pyexec.cgi, pyexec-sandbox and the test variant of the
# latter (CBUILD: see SANITIZE).
CGI_BIN_OBJ := $(CGI_SRC:%.c=$(BUILD)/%.o) $(SPAWN_SRC:%.c=$(BUILD)/%.o) \
               $(SQL_SRC:%.c=$(BUILD)/%.o) $(BUILD)/sql/schema.o \
               $(BUILD)/sql/pg_schema.o $(BUILD)/sandbox/seccomp_bpf.o
FCGI_BIN_OBJ := $(FCGI_SRC:%.c=$(BUILD)/%.o) $(BUILD)/cgi/flow.o \
               $(filter-out $(BUILD)/cgi/main.o,$(CGI_BIN_OBJ))
CHILD_BIN_OBJ := $(CHILD_SRC:%.c=$(CBUILD)/%.o) $(CBUILD)/sandbox/seccomp_bpf.o
NOPY_BIN_OBJ := $(filter-out $(PYLAYER_SRC:%.c=$(CBUILD)/%.o),$(CHILD_BIN_OBJ)) \
               $(PYLAYER_SRC:%.c=$(CBUILD)/nopy/%.o)
# Test-only kernel-only sandboxes with one optional kernel layer switched
# off at build time (never a runtime switch): as on a kernel without it.
LAYER_VARIANTS := no-userns no-landlock
VARIANT_SRC_no-userns   := sandbox/ns.c
VARIANT_SRC_no-landlock := sandbox/landlock.c
variant_obj = $(filter-out $(PYLAYER_SRC:%.c=$(CBUILD)/%.o) \
                $(VARIANT_SRC_$(1):%.c=$(CBUILD)/%.o),$(CHILD_BIN_OBJ)) \
              $(PYLAYER_SRC:%.c=$(CBUILD)/$(1)/%.o) \
              $(VARIANT_SRC_$(1):%.c=$(CBUILD)/$(1)/%.o)
UNIT_SRC    := tests/unit/test_main.c tests/unit/test_cgi.c tests/unit/test_sandbox.c tests/unit/test_sql.c
UNIT_OBJ    := $(UNIT_SRC:%.c=$(BUILD)/%.o)
LIB_OBJ     := $(filter-out $(BUILD)/cgi/main.o,$(CGI_OBJ)) \
               $(filter-out $(BUILD)/sandbox/child.o $(BUILD)/sandbox/zygote.o,$(SANDBOX_OBJ)) \
               $(SQL_OBJ)

ifeq ($(SANITIZE),1)
# side by side, as pyexec-admin doctor looks for pyexec.cgi next to itself
CGI      := $(BUILD)/bin/pyexec.cgi
FCGI     := $(BUILD)/bin/pyexec-fcgi
ADMIN    := $(BUILD)/bin/pyexec-admin
MCP      := $(BUILD)/bin/pyexec-mcp
else
CGI      := pyexec.cgi
FCGI     := pyexec-fcgi
ADMIN    := pyexec-admin
MCP      := pyexec-mcp
endif
# pyexec.cgi runs the pyexec-sandbox next to it: the test variant is the
# same broker beside a sandbox built without the Python-level layer.
SANDBOX_BIN := $(dir $(CGI))pyexec-sandbox
NOPY_CGI := $(CBUILD)/tests/pyexec-nopy.cgi
NOPY_SANDBOX := $(CBUILD)/tests/pyexec-sandbox
VARIANT_CGI := $(LAYER_VARIANTS:%=$(CBUILD)/tests/%/pyexec.cgi)
UNIT     := $(BUILD)/tests/unit-tests
TRY      := $(CBUILD)/tests/try-syscall

.SECONDEXPANSION:
.PHONY: FORCE all test unit blackbox deps check-deps serve serve-deps install uninstall \
        clean print-flags loadtest fuzz fuzz-build fuzz-smoke bench
all: $(CGI) $(FCGI) $(ADMIN) $(MCP)

# pyexec-mcp runs the pyexec.cgi beside it, else the installed one.
$(MCP): $(MCP_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(shell $(PKG_CONFIG) --libs libcjson 2>/dev/null)


# The settings validate allowed_modules against the vetted modules and
# network lists with cgi/cidr.c.
$(ADMIN): $(ADMIN_OBJ) $(SQL_OBJ) $(BUILD)/sandbox/profile.o \
          $(BUILD)/cgi/cidr.o
	@mkdir -p $(dir $@)
	$(call say,LD)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

# Whatever builds pyexec.cgi builds the pyexec-sandbox it runs.
$(CGI): $(CGI_BIN_OBJ) | $(SANDBOX_BIN)
	@mkdir -p $(dir $@)
	$(call say,LD)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(BROKER_LIBS)

# pyexec-fcgi forks its children from a pyexec-sandbox zygote beside it.
$(FCGI): $(FCGI_BIN_OBJ) | $(SANDBOX_BIN)
	@mkdir -p $(dir $@)
	$(call say,LD)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(BROKER_LIBS) -lfcgi

# The request flow without pyexec.cgi's main(), for pyexec-fcgi.
$(BUILD)/cgi/flow.o: cgi/main.c
	@mkdir -p $(dir $@)
	$(call say,CC)$(CC) $(CFLAGS_ALL) -DPYEXEC_NO_MAIN -c -o $@ $<

$(SANDBOX_BIN): $(CHILD_BIN_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD)$(CC) $(LDFLAGS_SANDBOX) -o $@ $^ $(SANDBOX_LIBS)

$(NOPY_CGI): $(CGI_BIN_OBJ) | $(NOPY_SANDBOX)
	@mkdir -p $(dir $@)
	$(call say,LD)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(BROKER_LIBS)

$(NOPY_SANDBOX): $(NOPY_BIN_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD)$(CC) $(LDFLAGS_SANDBOX) -o $@ $^ $(SANDBOX_LIBS)

$(VARIANT_CGI): $(CBUILD)/tests/%/pyexec.cgi: $(CGI_BIN_OBJ) | $(CBUILD)/tests/%/pyexec-sandbox
	@mkdir -p $(dir $@)
	$(call say,LD)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(BROKER_LIBS)

$(LAYER_VARIANTS:%=$(CBUILD)/tests/%/pyexec-sandbox): $(CBUILD)/tests/%/pyexec-sandbox: $$(call variant_obj,$$*)
	@mkdir -p $(dir $@)
	$(call say,LD)$(CC) $(LDFLAGS_SANDBOX) -o $@ $^ $(SANDBOX_LIBS)

$(UNIT): $(UNIT_OBJ) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(call say,LD)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

$(TRY): $(CBUILD)/tests/helpers/try-syscall.o $(CBUILD)/sandbox/seccomp.o \
        $(CBUILD)/sandbox/seccomp_bpf.o $(CBUILD)/sandbox/result.o
	@mkdir -p $(dir $@)
	$(call say,LD)$(CC) $(LDFLAGS_CGI) -o $@ $^ $(PKG_LIBS)

# The version /metrics reports (pyexec_build_info), from git; the stamp
# changes only with it, so only cgi/metrics.o is rebuilt when it does.
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)
$(BUILD)/version: FORCE
	@mkdir -p $(dir $@)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
$(BUILD)/cgi/metrics.o: $(BUILD)/version
$(BUILD)/cgi/metrics.o: CFLAGS_ALL += -DPYEXEC_VERSION='"$(VERSION)"'
FORCE:

# The schemas, compiled in: the one place each is written is
# sql/schema.sql (SQLite) and sql/pg_schema.sql (PostgreSQL).
$(BUILD)/sql/schema.c $(BUILD)/sql/pg_schema.c: $(BUILD)/sql/%.c: sql/%.sql
	@mkdir -p $(dir $@)
	$(call say,GEN){ echo '/* generated from $< */'; \
	  echo 'extern const char pyexec_$*_sql[];'; \
	  echo 'const char pyexec_$*_sql[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  echo ';'; } > $@

# The seccomp filter, compiled to BPF once at build time (sandbox/seccomp.c).
$(BUILD)/tools/seccomp-gen: sandbox/seccomp.c
	@mkdir -p $(dir $@)
	$(call say,LD)$(CC) $(CFLAGS_ALL) -DPYEXEC_SECCOMP_GEN $(LDFLAGS_ALL) -o $@ $< $(PKG_LIBS)

$(BUILD)/sandbox/seccomp_bpf.c: $(BUILD)/tools/seccomp-gen
	@mkdir -p $(dir $@)
	$(call say,GEN)$< > $@.tmp && mv $@.tmp $@

$(BUILD)/sandbox/seccomp_bpf.o: $(BUILD)/sandbox/seccomp_bpf.c
	$(call say,CC)$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/sql/schema.o $(BUILD)/sql/pg_schema.o: $(BUILD)/sql/%.o: $(BUILD)/sql/%.c
	$(call say,CC)$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(CBUILD)/nopy/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC)$(CC) $(CFLAGS_CGI) -DPYEXEC_TEST_NO_PYLAYER -c -o $@ $<

$(CBUILD)/no-userns/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC)$(CC) $(CFLAGS_CGI) -DPYEXEC_TEST_NO_PYLAYER -DPYEXEC_TEST_NO_USERNS -c -o $@ $<

$(CBUILD)/no-landlock/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC)$(CC) $(CFLAGS_CGI) -DPYEXEC_TEST_NO_PYLAYER -DPYEXEC_TEST_NO_LANDLOCK -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC)$(CC) $(CFLAGS_ALL) -c -o $@ $<

ifneq ($(CBUILD),$(BUILD))
$(CBUILD)/sql/schema.o $(CBUILD)/sql/pg_schema.o: $(CBUILD)/sql/%.o: $(BUILD)/sql/%.c
	@mkdir -p $(dir $@)
	$(call say,CC)$(CC) $(CFLAGS_CGI) -c -o $@ $<

$(CBUILD)/sandbox/seccomp_bpf.o: $(BUILD)/sandbox/seccomp_bpf.c
	@mkdir -p $(dir $@)
	$(call say,CC)$(CC) $(CFLAGS_CGI) -c -o $@ $<

$(CBUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC)$(CC) $(CFLAGS_CGI) -c -o $@ $<
endif

# Debian packages: to build; to serve (make serve); to test, which drives
# pyexec.cgi through every server in cgi/conf/ (apache2-bin is Apache's
# binary and modules without the service, which would take port 80).
BUILD_DEBS := build-essential pkg-config python3 libpython3-dev \
              libseccomp-dev libsqlite3-dev libcjson-dev libssl-dev libpq-dev \
              libfcgi-dev
SERVE_DEBS := lighttpd curl
TEST_DEBS  := python3-pytest apache2-bin nginx fcgiwrap clang libclang-rt-14-dev \
              bubblewrap apache2-utils systemd nodejs postgresql
# The MCP tests' client, the official TypeScript SDK, pinned by
# tests/mcp/package-lock.json (npm ci). Debian ships npm apart from nodejs;
# other builds of nodejs carry their own.
MCP_SDK    := tests/mcp/node_modules/@modelcontextprotocol/sdk/package.json
NPM_CI     := cd tests/mcp && npm ci --no-audit --no-fund --loglevel=error
LIGHTTPD   := /usr/sbin/lighttpd
SERVERS    := $(LIGHTTPD) /usr/sbin/apache2 /usr/sbin/nginx /usr/sbin/fcgiwrap \
              /usr/bin/bwrap /usr/bin/ab /usr/bin/systemd-analyze
HAVE_BUILD := $(PKG_CONFIG) --exists $(PKGS) && test -f /usr/include/openssl/sha.h \
              && test -f /usr/include/fcgiapp.h
# clang with libFuzzer's runtime (libclang-rt-14-dev), for make fuzz.
HAVE_FUZZ   = command -v $(FUZZ_CC) >/dev/null \
              && test -n "$(wildcard /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a)"

define apt_install
	@if [ "$$(id -u)" != 0 ]; then echo "make $@: run as root (apt-get)"; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(1)
endef

# The tests need the packages first; install them when something is missing.
check-deps:
	@$(HAVE_BUILD) && $(PYTHON) -c 'import pytest' 2>/dev/null \
	  && command -v curl >/dev/null $(foreach s,$(SERVERS),&& test -x $(s)) \
	  && $(HAVE_FUZZ) && test -x /usr/bin/node && command -v npm >/dev/null \
	  && test -n "$(wildcard /usr/lib/postgresql/*/bin/initdb)" && command -v psql >/dev/null \
	  || $(MAKE) --no-print-directory deps
	@test -f $(MCP_SDK) || { $(NPM_CI); }

deps:
	$(call apt_install,$(BUILD_DEBS) $(SERVE_DEBS) $(TEST_DEBS) \
	  $$(command -v npm >/dev/null || echo npm))
	$(NPM_CI)

serve-deps:
	$(call apt_install,$(BUILD_DEBS) $(SERVE_DEBS))

# make serve: a development server, on loopback, in the foreground. lighttpd
# runs as you, from a copy of the shipped cgi/conf/lighttpd.conf in which
# only its EDIT lines change (port, paths, database; no user switch; errors
# to the terminal). The database is $(VARDIR)/pyexec.db.
PORT   ?= 8080
VARDIR ?= var
# MODE=fastcgi serves pyexec-fcgi (cgi/conf/lighttpd-fcgi.conf) instead.
MODE   ?= cgi
ifeq ($(MODE),fastcgi)
SERVE_CONF := lighttpd-fcgi.conf
SERVE_VAR  := pyexec_fcgi
SERVE_BIN  := $(FCGI)
else
SERVE_CONF := lighttpd.conf
SERVE_VAR  := pyexec_cgi
SERVE_BIN  := $(CGI)
endif
SERVE_DIR := $(abspath $(VARDIR))

define SERVE_BANNER

pyexec on http://127.0.0.1:$(PORT)/ ($(notdir $(SERVE_BIN)) under lighttpd in the foreground; Ctrl-C stops it)
database: $(SERVE_DIR)/pyexec.db

Try it:
  curl -X POST http://localhost:$(PORT) -H "Content-Type: application/json" -d '{"code": "print(\"Hello from Python!\")\nprint(sum([1,2,3,4,5]))", "input_data": {}}'

MCP clients: http://127.0.0.1:$(PORT)/mcp (Streamable HTTP), or the command
$(abspath $(MCP)) with PYEXEC_DB=$(SERVE_DIR)/pyexec.db (stdio).

Anonymous requests get 10 runs an hour per address. For an admin and a token
(printed once; send it as "Authorization: Bearer <token>"), from this directory:
  ./$(ADMIN) --db $(VARDIR)/pyexec.db user add alice --admin

endef
export SERVE_BANNER

serve:
	@$(HAVE_BUILD) && test -x $(LIGHTTPD) && command -v curl >/dev/null \
	  || $(MAKE) --no-print-directory serve-deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(SERVE_DIR)/lighttpd
	@sed -e 's|^server\.port = .*|server.port = $(PORT)|' \
	     -e '/^server\.username = /d' -e '/^server\.groupname = /d' \
	     -e 's|^var\.pyexec_cgi = .*|var.pyexec_cgi = "$(abspath $(CGI))"|' \
	     -e 's|^var\.pyexec_fcgi = .*|var.pyexec_fcgi = "$(abspath $(FCGI))"|' \
	     -e 's|^var\.pyexec_db = .*|var.pyexec_db = "$(SERVE_DIR)/pyexec.db"|' \
	     -e 's|^var\.pyexec_run_dir = .*|var.pyexec_run_dir = "$(SERVE_DIR)/run"|' \
	     -e 's|^var\.state_dir = .*|var.state_dir = "$(SERVE_DIR)/lighttpd"|' \
	     -e '/^server\.pid-file = /d' -e '/^server\.errorlog = /d' \
	     cgi/conf/$(SERVE_CONF) > $(SERVE_DIR)/lighttpd.conf
	@grep -qxF 'var.$(SERVE_VAR) = "$(abspath $(SERVE_BIN))"' $(SERVE_DIR)/lighttpd.conf \
	  && grep -qx 'server\.port = $(PORT)' $(SERVE_DIR)/lighttpd.conf \
	  || { echo "make serve: cgi/conf/$(SERVE_CONF) lacks the lines it edits"; exit 1; }
	@./$(ADMIN) --db $(SERVE_DIR)/pyexec.db init
	@printf '%s\n' "$$SERVE_BANNER"
	@exec $(LIGHTTPD) -D -f $(SERVE_DIR)/lighttpd.conf

# make install: the CGI in a directory of its own (a web server given that
# directory can run nothing else), the admin command, man pages, and the
# server configurations as examples, with the CGI's path set to this one.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/lib/pyexec
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/pyexec

MANPAGES   := admin/pyexec-admin.1 cgi/pyexec.cgi.8 cgi/pyexec-fcgi.8 \
              mcp/pyexec-mcp.1
# Installed with the CGI's and pyexec-admin's paths set to the installed ones.
EXAMPLES   := $(sort $(wildcard cgi/conf/*))

$(BUILD)/mcp/pyexec-mcp.o: CFLAGS_ALL += -DPYEXEC_CGI_PATH='"$(LIBEXECDIR)/pyexec.cgi"'

install: $(CGI) $(FCGI) $(ADMIN) $(MCP)
	install -d $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(DOCDIR)/examples
	install -m 0755 $(CGI) $(DESTDIR)$(LIBEXECDIR)/pyexec.cgi
	install -m 0755 $(SANDBOX_BIN) $(DESTDIR)$(LIBEXECDIR)/pyexec-sandbox
	install -m 0755 $(FCGI) $(DESTDIR)$(LIBEXECDIR)/pyexec-fcgi
	install -D -m 0755 $(ADMIN) $(DESTDIR)$(BINDIR)/pyexec-admin
	install -D -m 0755 $(MCP) $(DESTDIR)$(BINDIR)/pyexec-mcp
	for f in $(MANPAGES); do \
	  install -D -m 0644 $$f $(DESTDIR)$(MANDIR)/man$${f##*.}/$${f##*/}; done
	for f in $(EXAMPLES); do \
	  sed -e 's|/usr/local/lib/pyexec/pyexec\.cgi|$(LIBEXECDIR)/pyexec.cgi|' \
	      -e 's|/usr/local/lib/pyexec/pyexec-fcgi|$(LIBEXECDIR)/pyexec-fcgi|' \
	      -e 's|/usr/local/bin/pyexec-admin|$(BINDIR)/pyexec-admin|' $$f \
	    > $(DESTDIR)$(DOCDIR)/examples/$${f##*/} && \
	  chmod 0644 $(DESTDIR)$(DOCDIR)/examples/$${f##*/} || exit 1; done
	install -m 0644 README.md LICENSE $(DESTDIR)$(DOCDIR)/

# make uninstall (same PREFIX and DESTDIR): exactly what install put, and
# pyexec's own directories once empty; never bin/ or man/ themselves.
uninstall:
	rm -f $(DESTDIR)$(LIBEXECDIR)/pyexec.cgi \
	  $(DESTDIR)$(LIBEXECDIR)/pyexec-sandbox $(DESTDIR)$(LIBEXECDIR)/pyexec-fcgi $(DESTDIR)$(BINDIR)/pyexec-admin \
	  $(DESTDIR)$(BINDIR)/pyexec-mcp \
	  $(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/LICENSE
	for f in $(MANPAGES); do \
	  rm -f $(DESTDIR)$(MANDIR)/man$${f##*.}/$${f##*/}; done
	for f in $(EXAMPLES); do rm -f $(DESTDIR)$(DOCDIR)/examples/$${f##*/}; done
	for d in $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(DOCDIR)/examples \
	  $(DESTDIR)$(DOCDIR); do \
	  [ ! -d $$d ] || rmdir --ignore-fail-on-non-empty $$d || exit 1; done

# make bench: pyexec against its baselines, in one run (bench/bench.py);
# writes bench/RESULTS.md. BENCH_QUICK=1: a smoke run (figures meaningless).
bench: check-deps
	@$(MAKE) --no-print-directory $(CGI) $(FCGI)
	$(PYTHON) bench/bench.py $(if $(BENCH_QUICK),--quick)

unit: $(UNIT)
	$(UNIT)

test: check-deps
	@$(MAKE) --no-print-directory $(CGI) $(FCGI) $(ADMIN) $(MCP) $(NOPY_CGI) $(VARIANT_CGI) $(UNIT) $(TRY)
	$(UNIT)
ifneq ($(SANITIZE),1)
	@if $(HAVE_FUZZ); then $(MAKE) --no-print-directory fuzz-smoke; \
	elif [ "$(CI)" = true ]; then echo "make test: clang or libclang-rt-14-dev missing"; exit 1; \
	else echo "make test: no clang with libFuzzer: fuzz smoke not run"; fi
endif
ifneq ($(SANITIZE),1)
	@# A failure of this pass still runs the sanitizer pass, so that its
	@# results are reported too; the target then fails.
	@rc=0; PYEXEC_CGI=$(abspath $(CGI)) PYEXEC_NOPY_CGI=$(abspath $(NOPY_CGI)) \
	  PYEXEC_VARIANT_DIR=$(abspath $(CBUILD)/tests) \
	  PYEXEC_ADMIN=$(abspath $(ADMIN)) PYEXEC_MCP=$(abspath $(MCP)) \
	  PYEXEC_FCGI=$(abspath $(FCGI)) PYEXEC_TRY_SYSCALL=$(abspath $(TRY)) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests || rc=1; \
	$(MAKE) --no-print-directory SANITIZE=1 test || rc=1; \
	if [ "$$rc" != 0 ]; then \
	  echo "make test: failed (plain pass or sanitizer pass: see above)"; \
	  exit 1; fi
else
	PYEXEC_CGI=$(abspath $(CGI)) PYEXEC_NOPY_CGI=$(abspath $(NOPY_CGI)) \
	  PYEXEC_VARIANT_DIR=$(abspath $(CBUILD)/tests) \
	  PYEXEC_ADMIN=$(abspath $(ADMIN)) PYEXEC_MCP=$(abspath $(MCP)) \
	  PYEXEC_FCGI=$(abspath $(FCGI)) PYEXEC_TRY_SYSCALL=$(abspath $(TRY)) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests
endif

# libFuzzer harnesses (tests/fuzz/), with ASan and UBSan, in build-fuzz/.
# make fuzz runs each for FUZZ_SECONDS on the seed corpus in
# tests/fuzz/corpus/<name>/ (read only: what the run finds goes to
# build-fuzz/corpus/<name>/), a crash is saved in tests/fuzz/crashes/.
# make fuzz-smoke, part of make test, runs FUZZ_RUNS inputs per harness.
FUZZ_CC      := clang
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?= 2000
FUZZ_NAMES   := request encoder scan result member
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                $(WARN) -Werror -D_GNU_SOURCE $(PKG_CFLAGS)
FUZZ_SRC_request := cgi/request.c cgi/job.c cgi/jsonscan.c cgi/utf8.c \
                    cgi/http.c cgi/config.c sql/settings.c cgi/cidr.c \
                    cgi/cancel.c sandbox/profile.c
FUZZ_SRC_encoder := cgi/jsonw.c cgi/utf8.c
FUZZ_SRC_scan    := cgi/jsonscan.c
# fuzz_result includes sandbox/spawn.c itself (its static classification).
FUZZ_SRC_result  := sandbox/result.c sandbox/trace.c
FUZZ_DEP_result  := sandbox/spawn.c $(wildcard sandbox/*.h)
FUZZ_SRC_member  := cgi/mcp_span.c
FUZZ_BIN     := $(FUZZ_NAMES:%=build-fuzz/fuzz_%)

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(FUZZ_SRC_$$*) $$(FUZZ_DEP_$$*) $$(wildcard cgi/*.h sql/*.h)
	@mkdir -p $(dir $@)
	$(call say,CC)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC_$*) -lcjson -lm

fuzz-build: $(FUZZ_BIN)

fuzz: $(FUZZ_BIN)
	@for h in $(FUZZ_NAMES); do \
	  mkdir -p build-fuzz/corpus/$$h tests/fuzz/crashes/$$h || exit 1; \
	  echo "fuzz_$$h: $(FUZZ_SECONDS) s"; \
	  build-fuzz/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -max_len=8192 \
	    -print_final_stats=1 -artifact_prefix=tests/fuzz/crashes/$$h/ \
	    build-fuzz/corpus/$$h tests/fuzz/corpus/$$h || exit 1; \
	done

fuzz-smoke: $(FUZZ_BIN)
	@for h in $(FUZZ_NAMES); do \
	  rm -rf build-fuzz/smoke/$$h && mkdir -p build-fuzz/smoke/$$h || exit 1; \
	  build-fuzz/fuzz_$$h -runs=$(FUZZ_RUNS) -seed=1 -max_len=8192 \
	    -artifact_prefix=build-fuzz/smoke/$$h- build-fuzz/smoke/$$h \
	    tests/fuzz/corpus/$$h 2>build-fuzz/smoke/$$h.log \
	  && echo "fuzz_$$h: $(FUZZ_RUNS) runs over tests/fuzz/corpus/$$h, no crash" \
	  || { tail -40 build-fuzz/smoke/$$h.log; exit 1; }; \
	done

# The full load test through lighttpd (tests/loadtest.py; make test runs an
# 8 s variant): LOAD_SECONDS at LOAD_CONCURRENCY, then its proofs.
# MODE=fastcgi: through lighttpd-fcgi.conf and pyexec-fcgi.
LOAD_SECONDS     ?= 60
LOAD_CONCURRENCY ?= 16
loadtest: check-deps
	@$(MAKE) --no-print-directory $(CGI) $(FCGI)
	PYEXEC_CGI=$(abspath $(CGI)) PYEXEC_FCGI=$(abspath $(FCGI)) \
	  $(PYTHON) tests/loadtest.py -d $(LOAD_SECONDS) -c $(LOAD_CONCURRENCY) \
	  $(if $(filter fastcgi,$(MODE)),--fcgi)

print-flags:
	@echo "CC       = $(CC)"
	@echo "CFLAGS   = $(CFLAGS_ALL)"
	@echo "LDFLAGS  = $(LDFLAGS_ALL)"
	@echo "LIBS     = $(PKG_LIBS)"
	@echo "PYTHON   = $(PYVER) from $(PYSTDLIB)"

clean:
	rm -rf build build-san build-fuzz pyexec.cgi pyexec-admin pyexec-mcp

-include $(shell find build build-san -name '*.d' 2>/dev/null)
