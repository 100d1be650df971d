#!/usr/bin/env bash
# Make sure the Debian speech tools Rivulet uses are installed: the synthetic voices that make
# ASR training/test audio and back the embedded TTS (espeak-ng, flite, festival + English voices)
# and sox. Installs what is missing (apt-get; sudo when not root). Idempotent and quiet when done.
exec "$(dirname "$0")/ensure_debian_packages.sh" "speech tools" \
  espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox libsndfile1
