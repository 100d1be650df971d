#!/usr/bin/env bash
# ensure_debian_packages.sh LABEL PACKAGE...: install the Debian packages that are missing (apt-get;
# sudo when not root). Idempotent and quiet when everything is installed.
set -euo pipefail
label=$1; shift
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "==> $label: installed"; exit 0; fi
echo "==> $label: installing ${missing[*]} from Debian"
sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "==> $label: ready"
