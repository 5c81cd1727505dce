# Sourced by the benchmark runners: installs redis-server, redis-tools and python3-venv if
# redis-benchmark is missing, builds fjord in release, and provides redis-py's pinned venv.
command -v redis-benchmark >/dev/null || { sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo;
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq;
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server redis-tools python3-venv >/dev/null; }
bash scripts/build.sh
source tests/venv.sh
venv redispy
