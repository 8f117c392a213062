# m4/outbox-sink-macros.m4 - what one line of the sink list
# (m4/outbox-sinks.m4) does to configure and automake, so that adding a sink
# to this tree is its folder plus that one line (docs/plugin-guide.md, "A
# sink in this tree").
#
# OUTBOX_SINK(NAME, [PKG-CONFIG-MODULES], DESCRIPTION, [VARIABLE-PREFIX])
#   NAME                the plugin's name and its folder, sinks/NAME/
#                       ([a-z][a-z0-9_]*).
#   PKG-CONFIG-MODULES  its client library, as PKG_CHECK_MODULES takes it
#                       ("libnats >= 3.0"). Empty: the sink needs nothing
#                       but libc, is always built and ships in the outboxd
#                       package (the file sink). Otherwise the sink is built
#                       unless --without-NAME, its library is then required
#                       (a clear error says which and how to skip it), and it
#                       ships in its own package, outbox-sink-NAME.
#   DESCRIPTION         a few words for --help, the summary and the packages
#                       ("NATS JetStream").
#   VARIABLE-PREFIX     the prefix of the pkg-config variables its local.mk
#                       uses, default NAME in capitals (NATS_CFLAGS,
#                       NATS_LIBS); the Kafka sink keeps RDKAFKA.
#
# For each sink with a library it defines --with-NAME/--without-NAME, the
# pkg-config check, the automake conditional WITH_NAME (capitals) and the
# summary line; for every sink, the `include sinks/NAME/local.mk` of
# Makefile.am (written into build-aux/sinks.mk, see OUTBOX_SINKS_OUTPUT) and
# the RPM spec's per-sink parts (packaging/rpm/service-outbox.spec.in). A
# sink that needs more than a pkg-config check from configure puts it in
# sinks/NAME/configure.m4, included right after its check when it exists;
# with_NAME is "no" there when the sink is not built, and a word appended to
# outbox_sink_notes shows in the summary.

AC_DEFUN([OUTBOX_SINK],
[m4_if(m4_bregexp([$1], [^[a-z][a-z0-9_]*$]), [0], [],
  [m4_fatal([OUTBOX_SINK: the sink name ']$1[' is not [a-z][a-z0-9_]*])])dnl
m4_ifval([$3], [], [m4_fatal([OUTBOX_SINK($1): no description])])dnl
m4_append_uniq([_OUTBOX_SINKS], [$1], [ ], [],
  [m4_fatal([OUTBOX_SINK: sink ']$1[' is listed twice])])dnl
m4_ifval([$2],
  [_OUTBOX_SINK_PACKAGED([$1], [$2], [$3], m4_default([$4], m4_toupper([$1])))],
  [outbox_sinks_built="$outbox_sinks_built $1"])
m4_sinclude([sinks/$1/configure.m4])dnl
])

# _OUTBOX_SINK_PACKAGED(NAME, MODULES, DESCRIPTION, PREFIX)
m4_define([_OUTBOX_SINK_PACKAGED],
[AC_ARG_WITH([$1],
  [AS_HELP_STRING([--without-$1], [do not build the $3 sink ($2)])],
  [], [with_$1=yes])
AS_IF([test "x$with_$1" != xno],
  [PKG_CHECK_MODULES([$4], [$2], [],
     [AC_MSG_ERROR([the $3 sink (sinks/$1) needs $2: $$4_PKG_ERRORS
Install its development package (packaging/debian/control, Build-Depends), or configure --without-$1.])])
   outbox_sinks_built="$outbox_sinks_built $1"],
  [outbox_sinks_without="$outbox_sinks_without $1"])
AM_CONDITIONAL([WITH_]m4_toupper([$1]), [test "x$with_$1" != xno])
outbox_sinks_packaged="$outbox_sinks_packaged $1"
_OUTBOX_SINK_RPM([$1], [$2], [$3])
])

# _OUTBOX_SINK_RPM(NAME, MODULES, DESCRIPTION): appends this sink's parts to
# the RPM spec's substitutions. Each sink package requires the ABI its
# plugin was built for, which outboxd provides.
m4_define([_OUTBOX_SINK_RPM],
[outbox_rpm_requires=`echo "$2" | $AWK '{ for (i = 1; i <= NF; i++) {
    m = "pkgconfig(" $i ")"
    if ($(i + 1) ~ /^[[<>=]]+$/) { m = m " " $(i + 1) " " $(i + 2); i += 2 }
    print "BuildRequires:  " m } }'`
OUTBOX_RPM_SINK_BCONDS="$OUTBOX_RPM_SINK_BCONDS${OUTBOX_RPM_SINK_BCONDS:+
}%bcond_without $1"
OUTBOX_RPM_SINK_BUILDREQUIRES="$OUTBOX_RPM_SINK_BUILDREQUIRES${OUTBOX_RPM_SINK_BUILDREQUIRES:+
}%if %{with $1}
$outbox_rpm_requires
%endif"
OUTBOX_RPM_SINK_CONFIGURE="$OUTBOX_RPM_SINK_CONFIGURE %{!?with_$1:--without-$1}"
OUTBOX_RPM_SINK_PACKAGES="$OUTBOX_RPM_SINK_PACKAGES${OUTBOX_RPM_SINK_PACKAGES:+
}
%if %{with $1}
%package -n outbox-sink-$1
Summary:        $3 sink for outboxd ($2)
Requires:       outboxd%{?_isa}
Requires:       outbox-sink-abi = %{sink_abi}

%description -n outbox-sink-$1
The $3 sink (plugin: $1) for outboxd, built on $2.
%endif"
OUTBOX_RPM_SINK_FILES="$OUTBOX_RPM_SINK_FILES${OUTBOX_RPM_SINK_FILES:+
}
%if %{with $1}
%files -n outbox-sink-$1
%doc sinks/$1/README.md
%{plugindir}/$1.so
%endif"
])

# OUTBOX_SINKS_OUTPUT: after the list. Writes build-aux/sinks.mk, the
# `include sinks/NAME/local.mk` lines Makefile.am includes, in list order
# (the file sink first: its local.mk sets sink_LTLIBRARIES, the others add
# to it). automake cannot take a computed include, so the file is written
# here, when autoconf or automake reads configure.ac (autoreconf, or make's
# rebuild rules after the list changed), and only when its text changes.
AC_DEFUN([OUTBOX_SINKS_OUTPUT],
[m4_ifval(m4_defn([_OUTBOX_SINKS]), [], [m4_fatal([OUTBOX_SINKS_OUTPUT: no OUTBOX_SINK before it])])dnl
m4_esyscmd([mkdir -p build-aux 2>/dev/null
if { echo '# Generated from m4/outbox-sinks.m4 by autoconf (m4/outbox-sink-macros.m4): do not edit.'
     for s in ]m4_defn([_OUTBOX_SINKS])[; do echo "include sinks/$s/local.mk"; done
   } >build-aux/sinks.mk.tmp 2>/dev/null; then
  if cmp -s build-aux/sinks.mk.tmp build-aux/sinks.mk; then rm -f build-aux/sinks.mk.tmp
  else mv -f build-aux/sinks.mk.tmp build-aux/sinks.mk; fi
fi])dnl
AC_SUBST([OUTBOX_SINKS_ALL], ["]m4_defn([_OUTBOX_SINKS])["])
AC_SUBST([OUTBOX_SINKS_PACKAGED], [`echo $outbox_sinks_packaged`])
AC_SUBST([OUTBOX_SINKS], [`echo $outbox_sinks_built`])
AC_SUBST([OUTBOX_RPM_SINK_BCONDS])
AC_SUBST([OUTBOX_RPM_SINK_BUILDREQUIRES])
AC_SUBST([OUTBOX_RPM_SINK_CONFIGURE])
AC_SUBST([OUTBOX_RPM_SINK_PACKAGES])
AC_SUBST([OUTBOX_RPM_SINK_FILES])
AM_SUBST_NOTMAKE([OUTBOX_RPM_SINK_BUILDREQUIRES])
AM_SUBST_NOTMAKE([OUTBOX_RPM_SINK_PACKAGES])
AM_SUBST_NOTMAKE([OUTBOX_RPM_SINK_FILES])
AM_SUBST_NOTMAKE([OUTBOX_RPM_SINK_BCONDS])
AM_SUBST_NOTMAKE([OUTBOX_RPM_SINK_CONFIGURE])
])
