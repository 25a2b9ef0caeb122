#!/bin/bash
# test_cli.sh BINARY - what a user sees for a bad option: exit status 2 and one
# line naming the option and the value; and what -n prints for a good one.
bin=$1
fail=0
# -n: should a bad value ever be accepted, the daemon must still not start on the host.
base="--listen-interface lan0 --external-interface wan0 -n"

expect_error() {
	out=$("$bin" $base "$@" 2>&1 >/dev/null)
	rc=$?
	want=$(printf '%s' "$1 '$2'")
	if [ $rc -ne 2 ] || ! grep -qF -- "$want" <<<"$out"; then
		echo "FAIL: $* -> exit $rc, '$out' (wanted exit 2 and a message with \"$want\")"
		fail=1
	else
		echo "ok   $* -> $out"
	fi
}

expect_error --listen-port 0
expect_error --listen-port 70000
expect_error --allowed-ports 9000-8000
expect_error --default-lifetime -5
expect_error --max-lifetime -5
expect_error --listen-interface 'bad/name'
expect_error --external-interface 'has space'
expect_error --max-mappings-per-ip 0
expect_error --log-level loud
expect_error --state-dir relative
expect_error --nat-table 'a;b'
expect_error --nat-chain postrouting
expect_error --reserved-ports 9000-8000
expect_error --external-address 300.1.1.1
expect_error --external-address 224.0.0.1
expect_error --rate-limit -1
expect_error --upstream-gateway 10.2.0
expect_error --upstream-gateway 255.255.255.255
expect_error --upstream-interface wg0
expect_error --upstream-interface 'bad/if'
NATPMP_LISTEN_PORT=99999 expect_error --listen-port 99999
# STUN mode: each bad value named, with what to write.
expect_error --stun-server '[2001:db8::1]:3478'
expect_error --stun-server 'stun_server!'
expect_error --stun-server stun.example.net:0
expect_error --stun-server stun.example.net:
expect_error --stun-server ':3478'
expect_error --stun-keepalive 0
expect_error --stun-keepalive 3601
expect_error --stun-keepalive-server 'keepalive_server!:80'
expect_error --stun-keepalive-server 203.0.113.5:99999
expect_error --stun-keepalive-server 203.0.113.5:80
out=$(NATPMP_STUN_ALLOW_FILTERED=maybe "$bin" $base --stun-server 203.0.113.7 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF -- "--stun-allow-filtered 'maybe': environment value must be 1/true/yes or 0/false/no" <<<"$out" \
	|| { echo "FAIL: NATPMP_STUN_ALLOW_FILTERED=maybe -> exit $rc, '$out'"; fail=1; }
expect_error --upstream-gateway 10.2.0.1 --stun-server 203.0.113.7
expect_error --external-address 203.0.113.9 --stun-server 203.0.113.7
out=$("$bin" $base --stun-server stun.example.net --stun-server 203.0.113.7:3479 --stun-keepalive 15 \
	--stun-keepalive-server keepalive.example.net --stun-allow-filtered 2>/dev/null); rc=$?
want=$'--stun-server stun.example.net:3478\n--stun-server 203.0.113.7:3479\n--stun-keepalive 15\n--stun-keepalive-server keepalive.example.net:80\n--stun-allow-filtered'
[ $rc -eq 0 ] && [[ $out == *"$want"* ]] \
	|| { echo "FAIL: good STUN options -> exit $rc, '$out' (wanted them printed with their default ports)"; fail=1; }
expect_error --http-listen 0.0.0.0:8080
expect_error --http-listen 192.168.1.1:8080
expect_error --http-listen example.com:8080
expect_error --http-listen ::1:8080
expect_error --http-listen '[::1:8080'
expect_error --http-listen '[::]:8080'
# What users type: localhost (not looked up: it is 127.0.0.1) and IPv6 loopback in brackets, without a token.
for l in localhost:8080 '[::1]:8080'; do
	out=$("$bin" $base --http-listen "$l" 2>/dev/null); rc=$?
	want=$([ "$l" = localhost:8080 ] && echo 127.0.0.1:8080 || echo "$l")
	[ $rc -eq 0 ] && grep -qxF -- "--http-listen $want" <<<"$out" \
		|| { echo "FAIL: --http-listen $l -> exit $rc, '$out' (wanted --http-listen $want)"; fail=1; }
done
expect_error --http-listen 127.0.0.1:0
expect_error --http-listen 127.0.0.1
expect_error --http-listen relative.sock
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#!/bin/sh\n' >"$tmp/noexec"
chmod 644 "$tmp/noexec"
expect_error --hook "$tmp/noexec"
expect_error --hook /tmp
expect_error --hook relative/hook
expect_error --hook-timeout 0
expect_error --config /nonexistent/natpmp.conf
expect_error --http-token-file /nonexistent/token
echo short >"$tmp/short"
chmod 600 "$tmp/short"
expect_error --http-token-file "$tmp/short"
NATPMP_TOKEN=short expect_error --http-token-file "$tmp/short"
printf 'NATPMP_RATE_LIMIT=12\nNATPMP_BOGUS=1\n' >"$tmp/bad.conf"
out=$("$bin" $base --config "$tmp/bad.conf" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF "config '$tmp/bad.conf' line 2: NATPMP_BOGUS: no such setting" <<<"$out" \
	|| { echo "FAIL: misspelt config key -> $rc '$out'"; fail=1; }
printf 'just words\n' >"$tmp/bad.conf"
out=$("$bin" $base --config "$tmp/bad.conf" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF "line 1: 'just': not a NAME=value line" <<<"$out" \
	|| { echo "FAIL: config line without = -> $rc '$out'"; fail=1; }
# A token line that lost its '=': named by its first word, the secret never printed.
printf '# the API\nNATPMP_TOKEN SuperSecretToken0123456789\n' >"$tmp/bad.conf"
chmod 600 "$tmp/bad.conf"
out=$("$bin" $base --config "$tmp/bad.conf" 2>&1); rc=$?
if [ $rc -ne 2 ] || ! grep -qF "line 2: 'NATPMP_TOKEN': not a NAME=value line" <<<"$out" || grep -q SuperSecret <<<"$out"; then
	echo "FAIL: a token line without = -> $rc '$out' (wanted exit 2, the line named, the token not printed)"
	fail=1
fi
# Config errors carry the same "error:" prefix as the daemon's other errors.
out=$("$bin" $base --listen-port 70000 2>&1); rc=$?
[ $rc -eq 2 ] && [[ $out == "natpmp-server: error: --listen-port '70000'"* ]] \
	|| { echo "FAIL: a config error without the error: prefix -> $rc '$out'"; fail=1; }
out=$("$bin" --json 2>&1); rc=$?
[ $rc -eq 2 ] && [[ $out == *"--json goes with --list-mappings"* ]] || { echo "FAIL: --json alone -> $rc '$out'"; fail=1; }
# The file's grammar (the reported lines): every line means what it reads as, or is an error naming it.
# conf_case DESCRIPTION CONTENT RC TEXT [NOT]: -n on a file holding CONTENT exits RC, says TEXT, never NOT.
conf_case() {
	printf '%b' "$2" >"$tmp/case.conf"
	chmod 600 "$tmp/case.conf"
	out=$("$bin" --external-interface wan0 -n --config "$tmp/case.conf" 2>&1); rc=$?
	# (A substring of the whole output, which may span lines: grep -F would take each line as a pattern.)
	if [ $rc -ne "$3" ] || [[ $out != *"$4"* ]] || { [ -n "${5:-}" ] && [[ $out == *"$5"* ]]; }; then
		echo "FAIL: $1 -> exit $rc, '$out' (wanted exit $3 and \"$4\"${5:+, never \"$5\"})"
		fail=1
	else
		echo "ok   $1"
	fi
}
conf_case "two NATPMP_LISTEN_INTERFACE lines add up" \
	'NATPMP_LISTEN_INTERFACE=br-lan\nNATPMP_LISTEN_INTERFACE=wg1\n' 0 $'--listen-interface br-lan\n--listen-interface wg1'
conf_case "two NATPMP_ALLOWED_PORTS lines add up" \
	'NATPMP_LISTEN_INTERFACE=br-lan\nNATPMP_ALLOWED_PORTS=6881-6999\nNATPMP_ALLOWED_PORTS=51413\n' 0 \
	$'--allowed-ports 6881-6999\n--allowed-ports 51413'
conf_case "a comment after a value is a comment" \
	'NATPMP_LISTEN_INTERFACE=br-lan # the LAN bridge\n' 0 "--listen-interface br-lan" "--listen-interface #"
conf_case "... also after a quoted value, and a # inside quotes is kept" \
	'NATPMP_LISTEN_INTERFACE="br-lan" # the LAN bridge\nNATPMP_NAT_TABLE=nat # table\n' 0 "--nat-table nat"
conf_case "an unbalanced quote is an error naming the line and the fix" \
	"NATPMP_LISTEN_INTERFACE=br-lan\nNATPMP_EXTERNAL_INTERFACE='eth0\n" 2 \
	"line 2: NATPMP_EXTERNAL_INTERFACE: the quote is never closed: close it at the end of the value, or remove it"
conf_case "text after a closing quote is an error" \
	'NATPMP_LISTEN_INTERFACE="br-lan" lan2\n' 2 "line 1: NATPMP_LISTEN_INTERFACE: text after the closing quote"
conf_case "a quote inside an unquoted value is an error" \
	"NATPMP_LISTEN_INTERFACE=br'lan\n" 2 "line 1: NATPMP_LISTEN_INTERFACE: a quote inside an unquoted value"
conf_case "export NAME=value, as in /etc/default files, means NAME=value" \
	'export NATPMP_LISTEN_INTERFACE=br-lan\n' 0 "--listen-interface br-lan"
conf_case "a lower-case setting name is an error, not skipped" \
	'NATPMP_LISTEN_INTERFACE=br-lan\nnatpmp_max_lifetime=60\n' 2 "line 2: 'natpmp_max_lifetime': setting names are upper case"
conf_case "a setting given twice: the last line wins, and a warning names both lines" \
	'NATPMP_LISTEN_INTERFACE=br-lan\nNATPMP_MAX_LIFETIME=600\nNATPMP_MAX_LIFETIME=900\n' 0 \
	"line 3: NATPMP_MAX_LIFETIME: also set on line 2, which this line overrides"
conf_case "... and it is the last line's value" \
	'NATPMP_LISTEN_INTERFACE=br-lan\nNATPMP_MAX_LIFETIME=600\nNATPMP_MAX_LIFETIME=900\n' 0 "--max-lifetime 900"
conf_case "a quote error on the token line never shows the token" \
	"NATPMP_LISTEN_INTERFACE=lo\nNATPMP_TOKEN='SuperSecretToken0123456789\n" 2 "line 2: NATPMP_TOKEN: the quote is never closed" SuperSecret
# Per-client rules: miniupnpd's form, checked word by word; NATPMP_RULE lines add up.
expect_error --rule 'permit 1024-65535 192.168.1.0/24 1024-65535'
expect_error --rule 'allow 1024-65535 192.168.1.0/33 1024-65535'
expect_error --rule 'allow 1024-70000 192.168.1.0/24 1024-65535'
expect_error --rule 'allow 1024-65535 192.168.1.0/24'
expect_error --rule 'allow 1024-65535 host.lan 1024-65535'
out=$("$bin" $base --rule 'allow 1024-65535 192.168.1.0/24 1024-65535' --rule 'deny 0-65535 0.0.0.0/0 0-65535' 2>/dev/null); rc=$?
[ $rc -eq 0 ] && [[ $out == *"--rule 'allow 1024-65535 192.168.1.0/24 1024-65535'"$'\n'"--rule 'deny 0-65535 0.0.0.0/0 0-65535'"* ]] \
	|| { echo "FAIL: miniupnpd's allow and deny lines -> $rc '$out'"; fail=1; }
# PCP's THIRD_PARTY: prohibited unless a third-party rule names the sender and the host.
expect_error --rule 'third-party 192.168.1.2'
expect_error --rule 'third-party 192.168.1.2 192.168.1.0/40'
expect_error --rule 'third-party nas.lan 192.168.1.0/24'
out=$("$bin" $base --rule 'third-party 192.168.1.2 192.168.1.0/24' 2>/dev/null); rc=$?
[ $rc -eq 0 ] && [[ $out == *"--rule 'third-party 192.168.1.2/32 192.168.1.0/24'"* ]] \
	|| { echo "FAIL: a third-party rule -> $rc '$out'"; fail=1; }
conf_case "NATPMP_RULE lines add up, in order; a comma separates rules on one line" \
	'NATPMP_LISTEN_INTERFACE=lan0\nNATPMP_RULE="allow 6881-6999 192.168.1.10 6881-6999"\nNATPMP_RULE=allow 51413 192.168.1.0/24 51413, deny 0-65535 0.0.0.0/0 0-65535\n' 0 \
	$'--rule \'allow 6881-6999 192.168.1.10/32 6881-6999\'\n--rule \'allow 51413 192.168.1.0/24 51413\'\n--rule \'deny 0-65535 0.0.0.0/0 0-65535\''
# Token files: the token alone, or the --config form with the file's grammar; never shown.
tok=TokenFileToken0123456789
for form in "$tok" "NATPMP_TOKEN=$tok" "export NATPMP_TOKEN = '$tok'" "# the API's token\nNATPMP_TOKEN=\"$tok\" # keep secret"; do
	printf '%b\n' "$form" >"$tmp/tok"
	chmod 600 "$tmp/tok"
	out=$("$bin" $base --http-token-file "$tmp/tok" --http-listen 0.0.0.0:8080 2>&1); rc=$?
	[ $rc -eq 0 ] || { echo "FAIL: token file holding '$form' -> $rc '$out'"; fail=1; }
done
printf 'NATPMP_TOKEN="%s\n' "$tok" >"$tmp/tok"
out=$("$bin" $base --http-token-file "$tmp/tok" 2>&1); rc=$?
[ $rc -eq 2 ] && [[ $out == *"the quote is never closed"* ]] && [[ $out != *"$tok"* ]] \
	|| { echo "FAIL: a token file with an open quote -> $rc '$out'"; fail=1; }
# A config file saved with a byte-order mark, and a setting name with a secret run into it.
conf_case "a byte-order mark before the first line is not part of its name" \
	'\xef\xbb\xbfNATPMP_LISTEN_INTERFACE=br-lan\n' 0 "--listen-interface br-lan"
conf_case "an unknown setting whose name holds a space shows only its first word" \
	'NATPMP_LISTEN_INTERFACE=lan0\nNATPMP_TOKEN sekrit=abc\n' 2 "line 2: 'NATPMP_TOKEN': no such setting" sekrit
# Ports: a configuration that can never grant one is refused.
out=$("$bin" $base --allowed-ports 7000-7010 --reserved-ports 7000-7010 2>&1); rc=$?
[ $rc -eq 2 ] && grep -qF -- "--reserved-ports '7000-7010': covers every port --allowed-ports '7000-7010' allows: no port could ever be granted" <<<"$out" \
	|| { echo "FAIL: reserved ports covering the allowed ones -> $rc '$out'"; fail=1; }
out=$("$bin" $base --allowed-ports 7000-7010 --reserved-ports 7000-7009 2>&1); rc=$?
[ $rc -eq 0 ] || { echo "FAIL: one port left (7010) is refused -> $rc '$out'"; fail=1; }
# Precedence: command line, then the file, then the environment; quotes and comments in the file.
printf '# comment\nNATPMP_RATE_LIMIT="12"\nNATPMP_MAX_LIFETIME=500\nOTHER_TOOL_SETTING=x\n' >"$tmp/good.conf"
out=$(NATPMP_RATE_LIMIT=7 NATPMP_DEFAULT_LIFETIME=60 NATPMP_MAX_LIFETIME=9 "$bin" $base --config "$tmp/good.conf" --max-lifetime 400 2>&1)
if ! grep -qx -- "--rate-limit 12" <<<"$out" || ! grep -qx -- "--max-lifetime 400" <<<"$out" \
	|| ! grep -qx -- "--default-lifetime 60" <<<"$out"; then
	echo "FAIL: precedence command line > file > environment: $out"
	fail=1
fi
# A token from a file is never printed; one from the environment is mentioned, not shown.
# no_token WHAT: the last output ($out) does not show the token.
no_token() {
	if grep -q 0123456789abcdef0123 <<<"$out"; then
		echo "FAIL: $1 printed the token: $out"
		fail=1
	fi
}
echo "0123456789abcdef0123" >"$tmp/token"
chmod 644 "$tmp/token"
expect_error --http-token-file "$tmp/token"
no_token "a world-readable --http-token-file"
printf 'NATPMP_TOKEN=0123456789abcdef0123\n' >"$tmp/token.conf"
chmod 644 "$tmp/token.conf"
expect_error --config "$tmp/token.conf"
no_token "a world-readable --config with NATPMP_TOKEN"
chmod 600 "$tmp/token" "$tmp/token.conf"
out=$("$bin" $base --http-listen 0.0.0.0:8080 --config "$tmp/token.conf" 2>&1); rc=$?
[ $rc -eq 0 ] || { echo "FAIL: a token in a private --config file is refused: $out"; fail=1; }
no_token "-n with NATPMP_TOKEN in a private --config"
out=$("$bin" $base --http-listen 0.0.0.0:80800 --config "$tmp/token.conf" 2>&1); rc=$?
[ $rc -eq 2 ] || { echo "FAIL: a bad --http-listen beside a token file: exit $rc: $out"; fail=1; }
no_token "an error beside NATPMP_TOKEN in a --config"
out=$("$bin" $base --http-listen 0.0.0.0:8080 --http-token-file "$tmp/token" 2>&1); rc=$?
if [ $rc -ne 0 ] || grep -q 0123456789abcdef0123 <<<"$out" || ! grep -qx -- "--http-token-file $tmp/token" <<<"$out"; then
	echo "FAIL: a token file allows a non-loopback --http-listen, unprinted: $rc $out"
	fail=1
fi
out=$(NATPMP_TOKEN=0123456789abcdef0123 "$bin" $base --http-listen 0.0.0.0:8080 2>&1); rc=$?
if [ $rc -ne 0 ] || grep -q 0123456789abcdef0123 <<<"$out"; then
	echo "FAIL: NATPMP_TOKEN allows a non-loopback --http-listen, unprinted: $rc $out"
	fail=1
fi

out=$("$bin" --bogus 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "unknown option '--bogus'" <<<"$out" || { echo "FAIL: --bogus -> $rc '$out'"; fail=1; }
out=$("$bin" --external-interface wan0 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q -- "--listen-interface is required" <<<"$out" || { echo "FAIL: no listen interface -> $rc '$out'"; fail=1; }

out=$("$bin" $base --allowed-ports 6881-6999 --allowed-ports 51413 -n); rc=$?
if [ $rc -ne 0 ] || ! grep -q -- "--allowed-ports 6881-6999" <<<"$out" || ! grep -q -- "--allowed-ports 51413" <<<"$out" \
	|| grep -q -- "--allowed-ports 1024-65535" <<<"$out"; then
	echo "FAIL: -n printed: $out"
	fail=1
fi
out=$("$bin" $base --reserved-ports 8080 --reserved-ports 9000-9100 --external-address 203.0.113.7 --rate-limit 0 -n)
for want in "--reserved-ports 8080" "--reserved-ports 9000-9100" "--external-address 203.0.113.7" "--rate-limit 0"; do
	grep -q -- "$want" <<<"$out" || { echo "FAIL: -n lacks '$want': $out"; fail=1; }
done
out=$(NATPMP_MAX_LIFETIME=600 "$bin" $base -n); rc=$?
grep -q -- "--max-lifetime 600" <<<"$out" || { echo "FAIL: NATPMP_MAX_LIFETIME not applied: $out"; fail=1; }
out=$(NATPMP_MAX_LIFETIME=600 "$bin" $base --max-lifetime 900 -n); rc=$?
grep -q -- "--max-lifetime 900" <<<"$out" || { echo "FAIL: the environment overrode the command line: $out"; fail=1; }

"$bin" --help | grep -q -- "--allowed-ports" || { echo "FAIL: --help"; fail=1; }
"$bin" --version | grep -q "natpmp-server [0-9]" || { echo "FAIL: --version"; fail=1; }

# A listen interface that does not exist is waited for, as an external one is
# (issue: a typo was fatal for one and silent for the other).  Needs root (a
# network namespace): without it, that is a failure, not a skip.
if [ "$(id -u)" != 0 ]; then
	echo "FAIL: the start-up checks need root (a network namespace): run as root, as scripts/test.sh does"
	fail=1
else
	dir=$(mktemp -d)
	unshare --net "$bin" --listen-interface nosuch0 --external-interface eht0 --state-dir "$dir" >"$dir/log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		grep -q "external interface eht0 does not exist" "$dir/log" && break
		sleep 0.1
	done
	if ! grep -q "listen interface nosuch0 does not exist (yet): waiting for it" "$dir/log" ||
		! grep -q "external interface eht0 does not exist (yet): waiting for it" "$dir/log" || ! kill -0 $pid; then
		echo "FAIL: missing interfaces: the daemon should wait and say so: $(cat "$dir/log")"
		fail=1
	else
		echo "ok   missing listen and external interfaces are waited for, named as missing"
	fi
	kill -TERM $pid 2>/dev/null
	wait $pid
	rc=$?
	[ $rc -eq 0 ] || { echo "FAIL: a daemon waiting for its interfaces exits $rc on SIGTERM"; fail=1; }
	rm -rf "$dir"
fi

# -n checks what it can without changing anything, and says so.
out=$("$bin" --listen-interface nosuch0 --external-interface lo --state-dir "$tmp/st" -n 2>&1 >/dev/null); rc=$?
if [ $rc -ne 0 ] || [[ $out != *"warning: listen interface nosuch0 does not exist (yet)"* ]] ||
	[[ $out != *"check: external interface lo exists"* ]] ||
	[[ $out != *"check: state directory $tmp/st does not exist yet and will be created"* ]] ||
	[[ $out != *"check: no HTTP API"* ]] || [ -e "$tmp/st" ]; then
	echo "FAIL: -n's checks -> $rc '$out'"
	fail=1
else
	echo "ok   -n: interfaces, state directory and HTTP API checked, nothing created"
fi
touch "$tmp/afile"
out=$("$bin" $base --state-dir "$tmp/afile/state" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && [[ $out == *"error: state directory $tmp/afile/state does not exist and cannot be created here"* ]] \
	|| { echo "FAIL: -n with a state directory that cannot be made -> $rc '$out'"; fail=1; }
out=$("$bin" $base --state-dir "$tmp/afile" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && [[ $out == *"error: state directory $tmp/afile is not a directory this user"* ]] \
	|| { echo "FAIL: -n with a file as state directory -> $rc '$out'"; fail=1; }
out=$("$bin" $base --state-dir "$tmp" --http-listen 127.0.0.1:8080 2>&1 >/dev/null); rc=$?
[ $rc -eq 0 ] && [[ $out == *"check: HTTP API on 127.0.0.1:8080 without a token: read-only"* ]] \
	|| { echo "FAIL: -n without a token -> $rc '$out'"; fail=1; }
exit $fail
