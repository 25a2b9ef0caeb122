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
# A double quote on an mdoc macro line groups arguments and is never printed:
# JSON examples there would lose their quotes (write \(dq).
if grep -n '^\.[A-Z][a-z].*"' "$man"; then
	echo "man page: the macro lines above hold a bare double quote, which mdoc eats: write \\(dq"
	fail=1
fi
[ $fail = 0 ] && echo "--help, man page and README agree on $(echo "$help" | wc -l) options"
exit $fail
