# packaging/: what `make install` lays out besides the binaries: the systemd
# units, an example configuration, man pages.
systemdsystemunit_DATA = packaging/systemd/outboxd.service packaging/systemd/outboxd@.service
CLEANFILES += $(systemdsystemunit_DATA)
EXTRA_DIST += packaging/systemd/outboxd.service.in packaging/systemd/outboxd@.service.in packaging/README.md
EXTRA_DIST += packaging/debian packaging/rpm/service-outbox.spec packaging/test-packages.sh

# Units name the installed paths, so they are made at build time.
edit_unit = $(MKDIR_P) packaging/systemd && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g'
packaging/systemd/outboxd.service: $(srcdir)/packaging/systemd/outboxd.service.in Makefile
	$(AM_V_GEN)$(edit_unit) $(srcdir)/packaging/systemd/outboxd.service.in >$@
packaging/systemd/outboxd@.service: $(srcdir)/packaging/systemd/outboxd@.service.in Makefile
	$(AM_V_GEN)$(edit_unit) $(srcdir)/packaging/systemd/outboxd@.service.in >$@

outboxdconfdir = $(sysconfdir)/outboxd
dist_outboxdconf_DATA = packaging/outboxd.yaml

dist_man_MANS = \
	packaging/man/outboxd.8 \
	packaging/man/outboxctl.1 \
	packaging/man/outboxd.conf.5 \
	packaging/man/outbox-sink.7
