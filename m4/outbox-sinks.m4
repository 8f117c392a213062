# m4/outbox-sinks.m4 - THE list of the sink plugins built in this tree, one
# line each: adding a sink is its folder, sinks/NAME/, plus one line here
# (docs/plugin-guide.md, "A sink in this tree"). configure.ac includes it;
# OUTBOX_SINK (m4/outbox-sink-macros.m4) makes of each line: --without-NAME,
# the pkg-config check, the automake conditional WITH_NAME, the summary
# line, Makefile.am's `include sinks/NAME/local.mk` and the RPM spec's
# package. debian/rules, scripts/deps.sh and packaging/test-packages.sh read
# it too (scripts/sinks.sh), so keep each call on one line:
#   OUTBOX_SINK([NAME], [PKG-CONFIG-MODULES], [DESCRIPTION], [VARIABLE-PREFIX])
# A sink without modules is built always and ships in the outboxd package;
# each other sink gets its own package, outbox-sink-NAME, whose Debian
# stanza and Build-Depends line are written by hand in
# packaging/debian/control (Debian wants that file static); the tree's
# check (scripts/sinks.sh check, run by `make check`) fails when they and
# this list disagree.
OUTBOX_SINK([file], [], [JSON lines into files])
OUTBOX_SINK([redis], [hiredis >= 0.14], [Redis Streams], [HIREDIS])
OUTBOX_SINK([nats], [libnats >= 3.0], [NATS JetStream])
OUTBOX_SINK([kafka], [rdkafka >= 1.9], [Apache Kafka], [RDKAFKA])
