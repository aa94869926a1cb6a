# Shared by bench/run.sh and bench/instructions.sh (sourced, not run).

# need_tools TAG TOOL=PACKAGE...: installs the Debian package of every TOOL that is not on the
# PATH (as root, with apt-get), or stops with the command that would.
need_tools() {
  local tag=$1 pair
  shift
  local need=()
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || need+=("${pair#*=}")
  done
  ((${#need[@]})) || return 0
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    echo "[$tag] ERROR: missing ${need[*]}: run 'sudo apt-get install -y ${need[*]}' and start again" >&2
    exit 1
  fi
  echo "[$tag] installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}
