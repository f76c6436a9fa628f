# What the test command needs from the machine, installed when missing. Source it, then call
# setup_machine. The Rust toolchain is the one thing assumed; everything else is checked here:
#   - Debian packages: curl, Python 3 with venv, Node.js with npm, Chromium (the browser suite),
#     pebble (the ACME test server, for the HTTPS tests), PostgreSQL (the store's tests run a
#     second time on it), Redis (the replicas' shared limits), apache2-utils (`htpasswd -B`, the
#     Basic auth tests' users file), openssl (the browser suite's HTTPS certificate), and the
#     libraries of the real Ollama in ../shared/ollama (libsqlite3, libstdc++).
#     As root they are installed with apt-get (one `apt-get update` first); otherwise the
#     exact `apt-get install` line is printed and the run stops before any suite starts.
#   - Per-suite packages (pip in a virtualenv, npm ci from the lock files) are installed by
#     each suite's own run.sh, only when its requirements or lock file changed.
# A suite that needs a server (pebble, PostgreSQL, Redis) adds its command and package
# to the list below; the suite starts it on a free loopback port in a temp directory and stops it.

# command -> Debian package providing it; checked in this order.
_SETUP_COMMANDS=(
    "curl curl"
    "python3 python3"
    "node nodejs"
    "npm npm"
    "chromium chromium"
    "pebble pebble"
    "pebble-challtestsrv pebble"
    "psql postgresql-client"
    "htpasswd apache2-utils"
    "openssl openssl"
    "redis-server redis-server"
    "redis-cli redis-tools"
)

# The packages missing on this machine, one per line.
missing_packages() {
    local entry cmd pkg
    for entry in "${_SETUP_COMMANDS[@]}"; do
        read -r cmd pkg <<<"$entry"
        command -v "$cmd" >/dev/null 2>&1 || echo "$pkg"
    done
    if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        echo python3-venv
    fi
    # The PostgreSQL server's programs are not on PATH (Debian keeps them per major version).
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        echo postgresql
    fi
    local ollama="${OLLAMA_SHARED_DIR:-$(_setup_root)/../shared/ollama}/bin/ollama"
    if [ -x "$ollama" ] && command -v ldd >/dev/null 2>&1; then
        local libs
        libs="$(ldd "$ollama" 2>/dev/null | awk '/not found/ {print $1}')"
        case "$libs" in *libsqlite3*) echo libsqlite3-0 ;; esac
        case "$libs" in *libstdc++*) echo libstdc++6 ;; esac
    fi
}

_setup_root() {
    cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd
}

# Install what is missing (as root), or say exactly what to run and fail.
setup_machine() {
    local missing
    mapfile -t missing < <(missing_packages | sort -u)
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "machine: every needed package is installed"
        return 0
    fi
    local line="apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "The test suites need these Debian packages: ${missing[*]}" >&2
        echo "Install them, then run this command again:" >&2
        echo "    sudo apt-get update && sudo $line" >&2
        return 1
    fi
    echo "machine: installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    mapfile -t missing < <(missing_packages | sort -u)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "still missing after apt-get install: ${missing[*]}" >&2
        return 1
    fi
}
