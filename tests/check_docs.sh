#!/bin/sh
# check_docs.sh BINARY MANPAGE README - every option --help lists is in the
# man page and the README, and the other way round.
set -eu
bin=$1 man=$2 readme=$3
help=$("$bin" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
fail=0
for opt in $help; do
	name=${opt#--}
	grep -q -- "\\\\-\\\\-$name\\b\|Fl \\\\-$name\\b" "$man" || { echo "man page lacks $opt"; fail=1; }
	grep -q -- "$opt\\b" "$readme" || { echo "README lacks $opt"; fail=1; }
done
for opt in $(grep -o 'Fl \\-[a-z-]*' "$man" | sed 's/Fl \\-/--/' | sort -u); do
	echo "$help" | grep -qx -- "$opt" || { echo "man page documents $opt, which --help does not know"; fail=1; }
done
[ $fail = 0 ] && echo "--help, man page and README agree on $(echo "$help" | wc -l) options"
exit $fail
