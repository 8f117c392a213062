# outboxd/ejson.mk: the JSON payload writer (outboxd/ejson.h), its tests,
# and bench/bench_json, which measures it against libbson's and jansson's.

# BSON to relaxed Extended JSON, apart so that outboxd, the tests and the
# bench link the very same code. It needs libbson only: $(MONGOC_CFLAGS)
# and $(MONGOC_LIBS) carry libbson's flags (libmongoc-1.0.pc requires it),
# and configure has no check of libbson alone.
noinst_LTLIBRARIES += outboxd/libejson.la
outboxd_libejson_la_SOURCES = outboxd/ejson.h outboxd/ejson.c
outboxd_libejson_la_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
outboxd_libejson_la_LIBADD = $(MONGOC_LIBS) -lm

if HAVE_CMOCKA
# Every BSON type's form and the edge cases, exactly (no server needed).
check_PROGRAMS += outboxd/test_ejson
TESTS += outboxd/test_ejson
outboxd_test_ejson_SOURCES = outboxd/test_ejson.c
outboxd_test_ejson_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS) $(CMOCKA_CFLAGS)
outboxd_test_ejson_LDADD = outboxd/libejson.la $(MONGOC_LIBS) $(CMOCKA_LIBS)
endif

# The round trip: 10,000 random documents made by Python (pymongo's bson),
# written by the writer (outboxd/ejson_dump, BSON on stdin, JSON lines
# out), read back by Python's json module and bson.json_util.
check_PROGRAMS += outboxd/ejson_dump
outboxd_ejson_dump_SOURCES = outboxd/ejson_dump.c
outboxd_ejson_dump_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
outboxd_ejson_dump_LDADD = outboxd/libejson.la $(MONGOC_LIBS)
TESTS += outboxd/test_ejson_roundtrip.sh
EXTRA_DIST += outboxd/test_ejson_roundtrip.sh outboxd/test_ejson_roundtrip.py

# Ours against libbson's and jansson's, on event documents: events/s and
# bytes. Built on demand (`make bench/bench_json`), not with `all`:
# configure checks for jansson only with --enable-fuzz, and a package
# build has no jansson. (EXTRA_PROGRAMS is set here: nothing else in the
# tree uses it; a second user turns this `=` into `+=` after the first.)
EXTRA_PROGRAMS = bench/bench_json
bench_bench_json_SOURCES = bench/bench_json.c
bench_bench_json_CFLAGS = $(AM_CFLAGS) $(MONGOC_CFLAGS)
bench_bench_json_LDADD = outboxd/libejson.la bench/libbench.la $(MONGOC_LIBS) -ljansson
CLEANFILES += bench/bench_json$(EXEEXT)
