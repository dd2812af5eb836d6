# Shared by scripts/setup.sh, scripts/bench.sh, scripts/instructions.sh, wasm/build.sh and
# wasm/test-node.sh (sourced, not run).
#
# Each `ensure_*` installs one thing only when it is missing, so every caller is quick on a
# machine that has it all and still works on a fresh Debian 12 machine (root, rustup, node).

SOCKRELAY_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf '[sockrelay] %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# wait_port PORT [HINT]: waits (30 s at most) until something listens on 127.0.0.1:PORT, or
# exits with HINT (say, where the server's log is).
wait_port() {
	local port=$1 i
	for i in $(seq 300); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		sleep 0.1
	done
	die "nothing listens on 127.0.0.1:$port${2:+; $2}"
}

# --- Debian packages ------------------------------------------------------------------------

_apt_updated=""

# apt_ensure PKG...: installs the packages that `dpkg -s` does not report installed.
apt_ensure() {
	local missing=() pkg attempt
	for pkg in "$@"; do
		dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed' || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} by hand"
	export DEBIAN_FRONTEND=noninteractive
	if [ -z "$_apt_updated" ]; then
		say "apt-get update"
		apt-get update -qq -o DPkg::Lock::Timeout=300 || say "apt-get update failed; trying the installed lists"
		_apt_updated=1
	fi
	say "apt-get install ${missing[*]}"
	# A cleanup hook may remove downloaded .debs under a running install; a retry fetches them again.
	for attempt in 1 2 3; do
		apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null && return 0
		say "apt-get install failed (attempt $attempt of 3)"
		sleep 2
	done
	die "could not install ${missing[*]}"
}

# --- wasm32 toolchain route -----------------------------------------------------------------
#
# rustup: the rustup toolchain with its wasm32-unknown-unknown target (downloaded once).
# debian: when that target cannot be had, Debian's rustc-web (a newer rustc) builds std for
#         wasm32 from its shipped sources (-Zbuild-std) and links with lld's wasm-ld.
# SOCKRELAY_WASM_ROUTE=rustup|debian forces one.

WASM_TARGET=wasm32-unknown-unknown
DEBIAN_RUST_PACKAGES=(rustc-web cargo-web rust-web-src lld)

# Builds and links a tiny std cdylib with `rustc` on PATH: a target that is listed but cannot
# link (a half-installed component, a missing linker) fails here, not in the middle of a build.
wasm_probe_rustup() {
	command -v rustup >/dev/null && command -v rustc >/dev/null || return 1
	if ! rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET"; then
		say "rustup target add $WASM_TARGET (60 s at most)"
		timeout 60 rustup target add "$WASM_TARGET" >&2 || return 1
	fi
	local dir ok=1
	dir="$(mktemp -d)"
	printf '%s\n' '#[no_mangle] pub extern "C" fn probe(n: usize) -> usize { vec![7u8; n].iter().map(|&b| b as usize).sum() }' >"$dir/probe.rs"
	rustc --edition 2021 --target "$WASM_TARGET" --crate-type cdylib -O -o "$dir/probe.wasm" "$dir/probe.rs" 2>"$dir/log" &&
		[ -s "$dir/probe.wasm" ] && ok=0
	[ $ok -eq 0 ] || sed 's/^/  /' "$dir/log" >&2
	rm -rf "$dir"
	return $ok
}

# wasm_route: sets WASM_ROUTE, WASM_CARGO (a command array: env + cargo), WASM_CARGO_FLAGS
# (flags every wasm32 build and test of the route needs) and WASM_TARGET_DIR, installing what
# the chosen route needs.
wasm_route() {
	local forced="${SOCKRELAY_WASM_ROUTE:-}" target_root="${CARGO_TARGET_DIR:-$SOCKRELAY_ROOT/target}"
	case "$forced" in
	"" | rustup | debian) ;;
	*) die "SOCKRELAY_WASM_ROUTE must be rustup or debian, not '$forced'" ;;
	esac
	if [ "$forced" != debian ] && wasm_probe_rustup; then
		WASM_ROUTE=rustup
		WASM_CARGO=(cargo)
		WASM_CARGO_FLAGS=()
		WASM_TARGET_DIR="$target_root"
		return 0
	fi
	[ "$forced" = rustup ] && die "the rustup $WASM_TARGET target is not usable (SOCKRELAY_WASM_ROUTE=rustup)"
	[ -z "$forced" ] && say "the rustup $WASM_TARGET target is not usable; using Debian's rustc-web"
	apt_ensure "${DEBIAN_RUST_PACKAGES[@]}"
	WASM_ROUTE=debian
	# Debian's own cargo, rustc and rustdoc (none of rustup's proxies), RUSTC_BOOTSTRAP for the
	# unstable -Zbuild-std, and a target dir of its own so the two compilers never share one.
	WASM_CARGO=(env -u RUSTUP_TOOLCHAIN -u RUSTC_WRAPPER
		PATH="/usr/bin:$PATH"
		RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
		CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld
		/usr/bin/cargo)
	WASM_CARGO_FLAGS=(-Zbuild-std=std,panic_abort)
	WASM_TARGET_DIR="$target_root/wasm-debian"
}

# wasm_size_mode: after wasm_route, sets WASM_SIZE_MODE, WASM_SIZE_CARGO, WASM_SIZE_FLAGS and
# WASM_SIZE_TARGET_DIR for the release build of the browser modules.
#
# std rebuilt from source with `panic = "immediate-abort"` drops the panic message formatting
# std otherwise links (about 6 KB of wasm: the converter's 20 KB budget does not hold without
# it). The debian route builds std from source anyway; the rustup route needs its rust-src
# component (one more download, 60 s at most) and RUSTC_BOOTSTRAP for the -Z flags. Without
# rust-src, or with SOCKRELAY_WASM_BUILD_STD=0, the modules build as usual, only larger.
wasm_size_mode() {
	WASM_SIZE_MODE=plain
	WASM_SIZE_CARGO=("${WASM_CARGO[@]}")
	WASM_SIZE_FLAGS=("${WASM_CARGO_FLAGS[@]}")
	WASM_SIZE_TARGET_DIR="$WASM_TARGET_DIR"
	[ "${SOCKRELAY_WASM_BUILD_STD:-1}" = 0 ] && return 0
	if [ "$WASM_ROUTE" = rustup ]; then
		if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
			say "rustup component add rust-src (60 s at most)"
			if ! timeout 60 rustup component add rust-src >&2; then
				say "warning: no rust-src: building the browser modules with the prebuilt std (larger)"
				return 0
			fi
		fi
		WASM_SIZE_CARGO=(env RUSTC_BOOTSTRAP=1 cargo)
		WASM_SIZE_FLAGS=(-Zbuild-std=std,panic_abort)
		WASM_SIZE_TARGET_DIR="$WASM_TARGET_DIR/wasm-std"
	fi
	WASM_SIZE_MODE=std-from-source
	WASM_SIZE_CARGO=(env CARGO_PROFILE_WASM_RELEASE_PANIC=immediate-abort "${WASM_SIZE_CARGO[@]}")
	WASM_SIZE_FLAGS+=(-Zpanic-immediate-abort)
}

# --- wasm-bindgen-cli -----------------------------------------------------------------------

# The version of the wasm-bindgen crate the workspace uses: the CLI must be exactly that.
wasm_bindgen_version() {
	local version=""
	if [ -f "$SOCKRELAY_ROOT/Cargo.lock" ]; then
		version="$(awk '/^name = "wasm-bindgen"$/ { found = 1; next }
			found && /^version = / { gsub(/"/, "", $3); print $3; exit }' "$SOCKRELAY_ROOT/Cargo.lock")"
	fi
	if [ -z "$version" ]; then
		version="$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' "$SOCKRELAY_ROOT/Cargo.toml")"
	fi
	[ -n "$version" ] || die "cannot find the wasm-bindgen version in Cargo.lock or Cargo.toml"
	echo "$version"
}

ensure_wasm_bindgen() {
	local want have
	want="$(wasm_bindgen_version)"
	# `|| true`: on a fresh machine there is no wasm-bindgen, and pipefail would end the script.
	have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
	[ "$have" = "$want" ] && return 0
	say "cargo install wasm-bindgen-cli --version $want (found: ${have:-none}; takes a few minutes)"
	# Without --locked: the CLI's own lock file can name crate versions that no longer build.
	cargo install wasm-bindgen-cli --version "$want" >&2 || die "could not install wasm-bindgen-cli $want"
}

# --- npm ------------------------------------------------------------------------------------

# npm ci when node_modules is missing or older than package-lock.json.
ensure_node_modules() {
	local stamp="$SOCKRELAY_ROOT/node_modules/.package-lock.json"
	if [ -f "$stamp" ] && [ ! "$SOCKRELAY_ROOT/package-lock.json" -nt "$stamp" ]; then
		return 0
	fi
	command -v npm >/dev/null || die "npm not found (node 20 is needed)"
	say "npm ci"
	(cd "$SOCKRELAY_ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed"
}
