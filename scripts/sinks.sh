#!/bin/sh
# scripts/sinks.sh - the sink list, m4/outbox-sinks.m4, for the scripts and
# packaging that are not configure: debian/rules, scripts/deps.sh,
# packaging/test-packages.sh. Run from anywhere; reads the list of the tree
# it is in (or of $OUTBOX_SRCDIR).
#
#   sinks.sh names          every sink, in list order
#   sinks.sh packaged       the sinks with a client library: each has its own
#                           package, outbox-sink-NAME, and --without-NAME
#   sinks.sh builtin        the sinks without one (shipped in outboxd)
#   sinks.sh modules NAME   its pkg-config modules ("libnats >= 3.0")
#   sinks.sh description NAME
#   sinks.sh check          prints TAP: the list against the tree: every
#                           sink has sinks/NAME/local.mk and README.md; each
#                           packaged one has its stanza, build profile and
#                           Build-Depends line in packaging/debian/control,
#                           and control has no sink package the list lacks
#                           (`make check` runs it)
#
# The list is m4, one OUTBOX_SINK([NAME], [MODULES], [DESCRIPTION],
# [PREFIX]) call a line; lines that do not start with OUTBOX_SINK( are not
# read (comments, blank lines).
set -eu
top=${OUTBOX_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
list=$top/m4/outbox-sinks.m4
[ -r "$list" ] || { echo "scripts/sinks.sh: no sink list at $list" >&2; exit 2; }

# name TAB modules TAB description, one sink a line
table() {
  awk '
    /^OUTBOX_SINK\(/ {
      n = 0; s = $0
      while (match(s, /\[[^]]*\]/)) {
        f[++n] = substr(s, RSTART + 1, RLENGTH - 2); s = substr(s, RSTART + RLENGTH)
      }
      if (n < 3 || f[1] !~ /^[a-z][a-z0-9_]*$/) {
        printf "%s:%d: not OUTBOX_SINK([NAME], [MODULES], [DESCRIPTION]) on one line\n", FILENAME, FNR > "/dev/stderr"
        bad = 1; next
      }
      print f[1] "\t" f[2] "\t" f[3]
    }
    END { exit bad }' "$list"
}

field() { # column, sink name
  table | awk -F '\t' -v c="$1" -v n="$2" '$1 == n { print $c; found = 1 } END { exit !found }' \
    || { echo "scripts/sinks.sh: no sink '$2' in $list" >&2; exit 2; }
}

check() {
  control=$top/packaging/debian/control
  n=0 fails=0
  ok() { n=$((n + 1)); echo "ok $n - $*"; }
  notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
  names=$(table | cut -f1)
  packaged=$(table | awk -F '\t' '$2 != "" { print $1 }')
  for s in $names; do
    if [ -f "$top/sinks/$s/local.mk" ] && [ -f "$top/sinks/$s/README.md" ]; then
      ok "sink $s: sinks/$s/local.mk and README.md"
    else
      notok "sink $s: m4/outbox-sinks.m4 lists it, but sinks/$s/local.mk or sinks/$s/README.md is missing"
    fi
  done
  for s in $packaged; do
    # The stanza: Package and its Build-Profiles line right after it.
    stanza=$(awk -v p="outbox-sink-$s" '$0 == "Package: " p { on = 1; next } on && /^$/ { exit } on' "$control")
    bdep=$(awk '/^Build-Depends:/ { on = 1 } on && /^[^ ]/ && !/^Build-Depends:/ { exit } on' "$control" \
      | grep -c "<!pkg\.service-outbox\.no$s>" || true)
    if [ -z "$stanza" ]; then
      notok "sink $s: packaging/debian/control has no 'Package: outbox-sink-$s' stanza (copy another sink's)"
    elif ! printf '%s\n' "$stanza" | grep -qx "Build-Profiles: <!pkg.service-outbox.no$s>"; then
      notok "sink $s: the outbox-sink-$s stanza in packaging/debian/control lacks 'Build-Profiles: <!pkg.service-outbox.no$s>'"
    elif [ "$bdep" -lt 1 ]; then
      notok "sink $s: packaging/debian/control's Build-Depends has no line marked <!pkg.service-outbox.no$s> (its library's -dev package)"
    else
      ok "sink $s: packaging/debian/control has outbox-sink-$s, its build profile and Build-Depends"
    fi
  done
  extra=""
  for p in $(sed -n 's/^Package: outbox-sink-//p' "$control"); do
    printf '%s\n' $packaged | grep -qx "$p" || extra="$extra $p"
  done
  if [ -z "$extra" ]; then
    ok "packaging/debian/control has no sink package that m4/outbox-sinks.m4 lacks"
  else
    notok "packaging/debian/control has sink packages m4/outbox-sinks.m4 does not list:$extra"
  fi
  echo "1..$n"
  [ "$fails" -eq 0 ]
}

case ${1:-} in
  names) table | cut -f1 ;;
  packaged) table | awk -F '\t' '$2 != "" { print $1 }' ;;
  builtin) table | awk -F '\t' '$2 == "" { print $1 }' ;;
  modules) field 2 "${2:?sink name}" ;;
  description) field 3 "${2:?sink name}" ;;
  check) check ;;
  *) sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
