# tests/fuzz/: libFuzzer targets (clang). Built only in a tree configured
# with --enable-fuzz (tests/fuzz/run makes one: `make fuzz`, or
# FUZZ_SECONDS=60 in CI). Each target links the code under test from the
# same convenience libraries the daemon and the library are made of.
EXTRA_DIST += tests/fuzz/run tests/fuzz/README.md tests/fuzz/corpus tests/fuzz/make-seeds.py

if ENABLE_FUZZ
FUZZ_TARGETS = \
	tests/fuzz/fuzz_conffile \
	tests/fuzz/fuzz_schema \
	tests/fuzz/fuzz_envelope \
	tests/fuzz/fuzz_route
noinst_PROGRAMS += $(FUZZ_TARGETS)
FUZZ_LINK = $(AM_LDFLAGS) -fsanitize=fuzzer

tests_fuzz_fuzz_conffile_SOURCES = tests/fuzz/fuzz_conffile.c
tests_fuzz_fuzz_conffile_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/outboxd
tests_fuzz_fuzz_conffile_LDFLAGS = $(FUZZ_LINK)
tests_fuzz_fuzz_conffile_LDADD = outboxd/libconffile.la

tests_fuzz_fuzz_schema_SOURCES = tests/fuzz/fuzz_schema.c
tests_fuzz_fuzz_schema_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
tests_fuzz_fuzz_schema_LDFLAGS = $(FUZZ_LINK)
tests_fuzz_fuzz_schema_LDADD = liboutbox/liboutbox-core.la

tests_fuzz_fuzz_envelope_SOURCES = tests/fuzz/fuzz_envelope.c
tests_fuzz_fuzz_envelope_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS) $(JANSSON_CFLAGS)
tests_fuzz_fuzz_envelope_LDFLAGS = $(FUZZ_LINK)
tests_fuzz_fuzz_envelope_LDADD = liboutbox/liboutbox-core.la $(JANSSON_LIBS)

tests_fuzz_fuzz_route_SOURCES = tests/fuzz/fuzz_route.c
tests_fuzz_fuzz_route_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/outboxd
tests_fuzz_fuzz_route_LDFLAGS = $(FUZZ_LINK)
tests_fuzz_fuzz_route_LDADD = outboxd/libconffile.la
endif

# make fuzz: every target for FUZZ_SECONDS (600 by default), in _build/fuzz.
fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-600} $(SHELL) $(top_srcdir)/tests/fuzz/run
.PHONY: fuzz
