#!/usr/bin/env bash
# Make sure the Debian speech tools Rivulet uses are installed: the synthetic voices that make
# ASR training/test audio and back the embedded TTS (espeak-ng, flite, festival + English voices)
# and sox. Installs what is missing (apt-get; sudo when not root). Idempotent and quiet when done.
set -euo pipefail
packages=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox libsndfile1)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then echo "==> speech tools: installed"; exit 0; fi
echo "==> speech tools: installing ${missing[*]} from Debian"
sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
$sudo_cmd apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "==> speech tools: ready"
