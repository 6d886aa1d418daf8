# pyexec: run untrusted Python behind a CGI, in a kernel sandbox.
#
#   make            build pyexec.cgi
#   make serve      serve it with lighttpd on 127.0.0.1:8080 (PORT= to change),
#                   installing lighttpd first if it is missing (as root)
#   make test       install missing packages (as root), build, run every test
#   make install    PREFIX=/usr/local, DESTDIR= for staging
#   make deps       apt-get the build, serve and test packages
#   make bench      benchmark against baselines into bench/RESULTS.md
#                   (BENCH_QUICK=1: a smoke run)
#   make print-flags  show the flags that reach the compiler and linker
#   make clean
#
# DEV=1 (or CI=true) turns warnings into errors. SANITIZE=1 builds every
# binary with ASan and UBSan into build-san/.

# Debian's Python, never one that happens to be first on PATH (pyenv, venv):
# the pkg-config search path is pinned to the system's directories.
MULTIARCH  := $(shell gcc -print-multiarch 2>/dev/null)
PKG_CONFIG := env -u PKG_CONFIG_PATH PKG_CONFIG_LIBDIR=/usr/lib/$(MULTIARCH)/pkgconfig:/usr/lib/pkgconfig:/usr/share/pkgconfig /usr/bin/pkg-config
PKGS       := python3-embed libseccomp libcjson sqlite3
PYVER      := $(shell $(PKG_CONFIG) --modversion python3-embed 2>/dev/null)
PYSTDLIB   := /usr/lib/python$(PYVER)
PYTHON     := /usr/bin/python3

CC ?= cc
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
ifeq ($(SANITIZE),1)
OPT     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
BUILD   := build-san
else
BUILD   := build
endif
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null | sed 's/-I/-isystem /g')
# libcrypto statically: only SHA-256 is used, and the shared library would
# cost about 0.5 ms of loading at every request (sql/digest.c).
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) \
              -Wl,-Bstatic -lcrypto -Wl,-Bdynamic
DEFS    := -D_GNU_SOURCE -DOPENSSL_API_COMPAT=10101 -DPYEXEC_PYTHON_HOME='L"/usr"' \
           -DPYEXEC_PYTHON_STDLIB='L"$(PYSTDLIB)"' \
           -DPYEXEC_PYTHON_STDLIB_NARROW='"$(PYSTDLIB)"' \
           -DPYEXEC_PYTHON_VERSION='"$(PYVER)"'
CFLAGS_ALL  := -std=gnu11 $(OPT) $(WARN) $(HARDEN) $(DEFS) $(PKG_CFLAGS) -MMD -MP $(CFLAGS)
LDFLAGS_ALL := $(OPT) $(HARDEN_LD) $(LDFLAGS)

CGI_SRC     := cgi/main.c cgi/config.c cgi/http.c cgi/request.c cgi/job.c \
               cgi/jsonscan.c cgi/jsonw.c cgi/utf8.c cgi/response.c \
               cgi/identity.c cgi/slots.c cgi/cancel.c
SQL_SRC     := sql/store.c sql/users.c sql/runs.c sql/settings.c sql/digest.c \
               sql/manage.c
ADMIN_SRC   := admin/admin.c admin/util.c admin/cmd_init.c admin/cmd_user.c \
               admin/cmd_quota.c admin/cmd_config.c admin/cmd_logs.c \
               admin/cmd_stats.c admin/cmd_cost.c admin/cmd_prune.c \
               admin/cmd_doctor.c
SANDBOX_SRC := sandbox/spawn.c sandbox/child.c sandbox/fds.c sandbox/rlimit.c \
               sandbox/ns.c sandbox/landlock.c sandbox/seccomp.c \
               sandbox/audit.c sandbox/pyrun.c sandbox/pyerr.c \
               sandbox/allowlist.c sandbox/result.c sandbox/trace.c
# Objects whose behaviour the test-only switch changes.
PYLAYER_SRC := sandbox/child.c sandbox/pyrun.c

CGI_OBJ     := $(CGI_SRC:%.c=$(BUILD)/%.o)
SQL_OBJ     := $(SQL_SRC:%.c=$(BUILD)/%.o) $(BUILD)/sql/schema.o
ADMIN_OBJ   := $(ADMIN_SRC:%.c=$(BUILD)/%.o)
SANDBOX_OBJ := $(SANDBOX_SRC:%.c=$(BUILD)/%.o) $(BUILD)/sandbox/seccomp_bpf.o
NOPY_OBJ    := $(filter-out $(PYLAYER_SRC:%.c=$(BUILD)/%.o),$(SANDBOX_OBJ)) \
               $(PYLAYER_SRC:%.c=$(BUILD)/nopy/%.o)
UNIT_SRC    := tests/unit/test_main.c tests/unit/test_cgi.c tests/unit/test_sandbox.c tests/unit/test_sql.c
UNIT_OBJ    := $(UNIT_SRC:%.c=$(BUILD)/%.o)
LIB_OBJ     := $(filter-out $(BUILD)/cgi/main.o,$(CGI_OBJ)) $(SANDBOX_OBJ) $(SQL_OBJ)

CGI      := pyexec.cgi
ADMIN    := pyexec-admin
NOPY_CGI := $(BUILD)/tests/pyexec-nopy.cgi
UNIT     := $(BUILD)/tests/unit-tests
TRY      := $(BUILD)/tests/try-syscall

.PHONY: all test unit blackbox deps check-deps serve serve-deps install \
        clean print-flags bench
all: $(CGI) $(ADMIN)

$(ADMIN): $(ADMIN_OBJ) $(SQL_OBJ)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

$(CGI): $(CGI_OBJ) $(SANDBOX_OBJ) $(SQL_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

$(NOPY_CGI): $(CGI_OBJ) $(NOPY_OBJ) $(SQL_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

$(UNIT): $(UNIT_OBJ) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

$(TRY): $(BUILD)/tests/helpers/try-syscall.o $(BUILD)/sandbox/seccomp.o \
        $(BUILD)/sandbox/seccomp_bpf.o $(BUILD)/sandbox/result.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS)

# The schema, compiled in: the one place it is written is sql/schema.sql.
$(BUILD)/sql/schema.c: sql/schema.sql
	@mkdir -p $(dir $@)
	{ echo '/* generated from sql/schema.sql */'; \
	  echo 'extern const char pyexec_schema_sql[];'; \
	  echo 'const char pyexec_schema_sql[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $<; \
	  echo ';'; } > $@

# The seccomp filter, compiled to BPF once at build time (sandbox/seccomp.c).
$(BUILD)/tools/seccomp-gen: sandbox/seccomp.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -DPYEXEC_SECCOMP_GEN $(LDFLAGS_ALL) -o $@ $< $(PKG_LIBS)

$(BUILD)/sandbox/seccomp_bpf.c: $(BUILD)/tools/seccomp-gen
	$< > $@.tmp && mv $@.tmp $@

$(BUILD)/sandbox/seccomp_bpf.o: $(BUILD)/sandbox/seccomp_bpf.c
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/sql/schema.o: $(BUILD)/sql/schema.c
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(BUILD)/nopy/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -DPYEXEC_TEST_NO_PYLAYER -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c -o $@ $<

# Debian packages: to build; to serve (make serve); to test, which drives
# pyexec.cgi through every server in cgi/conf/ (apache2-bin is Apache's
# binary and modules without the service, which would take port 80).
BUILD_DEBS := build-essential pkg-config python3 libpython3-dev \
              libseccomp-dev libsqlite3-dev libcjson-dev libssl-dev
SERVE_DEBS := lighttpd curl
TEST_DEBS  := python3-pytest apache2-bin nginx fcgiwrap bubblewrap apache2-utils
LIGHTTPD   := /usr/sbin/lighttpd
SERVERS    := $(LIGHTTPD) /usr/sbin/apache2 /usr/sbin/nginx /usr/sbin/fcgiwrap \
              /usr/bin/bwrap /usr/bin/ab
HAVE_BUILD := $(PKG_CONFIG) --exists $(PKGS) && test -f /usr/include/openssl/sha.h

define apt_install
	@if [ "$$(id -u)" != 0 ]; then echo "make $@: run as root (apt-get)"; exit 1; fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(1)
endef

# The tests need the packages first; install them when something is missing.
check-deps:
	@$(HAVE_BUILD) && $(PYTHON) -c 'import pytest' 2>/dev/null \
	  && command -v curl >/dev/null $(foreach s,$(SERVERS),&& test -x $(s)) \
	  || $(MAKE) --no-print-directory deps

deps:
	$(call apt_install,$(BUILD_DEBS) $(SERVE_DEBS) $(TEST_DEBS))

serve-deps:
	$(call apt_install,$(BUILD_DEBS) $(SERVE_DEBS))

# make serve: a development server, on loopback, in the foreground. lighttpd
# runs as you, from a copy of the shipped cgi/conf/lighttpd.conf in which
# only its EDIT lines change (port, paths, database; no user switch; errors
# to the terminal). The database is $(VARDIR)/pyexec.db.
PORT   ?= 8080
VARDIR ?= var
SERVE_DIR := $(abspath $(VARDIR))

define SERVE_BANNER

pyexec on http://127.0.0.1:$(PORT)/ (lighttpd in the foreground; Ctrl-C stops it)
database: $(SERVE_DIR)/pyexec.db

Try it:
  curl -X POST http://localhost:$(PORT) -H "Content-Type: application/json" -d '{"code": "print(\"Hello from Python!\")\nprint(sum([1,2,3,4,5]))", "input_data": {}}'

Anonymous requests get 10 runs an hour per address. For an admin and a token
(printed once; send it as "Authorization: Bearer <token>"):
  pyexec-admin --db $(SERVE_DIR)/pyexec.db user add alice --admin

endef
export SERVE_BANNER

serve:
	@$(HAVE_BUILD) && test -x $(LIGHTTPD) && command -v curl >/dev/null \
	  || $(MAKE) --no-print-directory serve-deps
	@$(MAKE) -q $(CGI) 2>/dev/null || $(MAKE) --no-print-directory $(CGI)
	@mkdir -p $(SERVE_DIR)/lighttpd
	@sed -e 's|^server\.port = .*|server.port = $(PORT)|' \
	     -e '/^server\.username = /d' -e '/^server\.groupname = /d' \
	     -e 's|^var\.pyexec_cgi = .*|var.pyexec_cgi = "$(abspath $(CGI))"|' \
	     -e 's|^var\.pyexec_db = .*|var.pyexec_db = "$(SERVE_DIR)/pyexec.db"|' \
	     -e 's|^var\.state_dir = .*|var.state_dir = "$(SERVE_DIR)/lighttpd"|' \
	     -e '/^server\.pid-file = /d' -e '/^server\.errorlog = /d' \
	     cgi/conf/lighttpd.conf > $(SERVE_DIR)/lighttpd.conf
	@grep -qxF 'var.pyexec_cgi = "$(abspath $(CGI))"' $(SERVE_DIR)/lighttpd.conf \
	  && grep -qx 'server\.port = $(PORT)' $(SERVE_DIR)/lighttpd.conf \
	  || { echo "make serve: cgi/conf/lighttpd.conf lacks the lines it edits"; exit 1; }
	@if [ -x $(ADMIN) ]; then ./$(ADMIN) --db $(SERVE_DIR)/pyexec.db init; fi
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

install: $(CGI)
	install -d $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(DOCDIR)/examples
	install -m 0755 $(CGI) $(DESTDIR)$(LIBEXECDIR)/pyexec.cgi
	if [ -f $(ADMIN) ]; then install -D -m 0755 $(ADMIN) $(DESTDIR)$(BINDIR)/$(ADMIN); fi
	for f in $(wildcard man/*.[1-8]); do \
	  install -D -m 0644 $$f $(DESTDIR)$(MANDIR)/man$${f##*.}/$${f##*/}; done
	for f in cgi/conf/*.conf; do \
	  sed 's|/usr/local/lib/pyexec/pyexec\.cgi|$(LIBEXECDIR)/pyexec.cgi|' $$f \
	    > $(DESTDIR)$(DOCDIR)/examples/$${f##*/} && \
	  chmod 0644 $(DESTDIR)$(DOCDIR)/examples/$${f##*/} || exit 1; done
	install -m 0644 README.md LICENSE $(DESTDIR)$(DOCDIR)/

# make bench: pyexec against its baselines, in one run (bench/bench.py);
# writes bench/RESULTS.md. BENCH_QUICK=1: a smoke run (figures meaningless).
bench: check-deps
	@$(MAKE) --no-print-directory $(CGI)
	$(PYTHON) bench/bench.py $(if $(BENCH_QUICK),--quick)

unit: $(UNIT)
	$(UNIT)

test: check-deps
	@$(MAKE) --no-print-directory $(CGI) $(ADMIN) $(NOPY_CGI) $(UNIT) $(TRY)
	$(UNIT)
ifneq ($(SANITIZE),1)
	@$(MAKE) --no-print-directory SANITIZE=1 build-san/tests/unit-tests
	build-san/tests/unit-tests
endif
	PYEXEC_CGI=$(abspath $(CGI)) PYEXEC_NOPY_CGI=$(abspath $(NOPY_CGI)) \
	  PYEXEC_ADMIN=$(abspath $(ADMIN)) \
	  PYEXEC_TRY_SYSCALL=$(abspath $(TRY)) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests

print-flags:
	@echo "CC       = $(CC)"
	@echo "CFLAGS   = $(CFLAGS_ALL)"
	@echo "LDFLAGS  = $(LDFLAGS_ALL)"
	@echo "LIBS     = $(PKG_LIBS)"
	@echo "PYTHON   = $(PYVER) from $(PYSTDLIB)"

clean:
	rm -rf build build-san $(CGI) $(ADMIN)

-include $(shell find build build-san -name '*.d' 2>/dev/null)
