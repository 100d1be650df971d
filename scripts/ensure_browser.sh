#!/usr/bin/env bash
# Make sure the headless browsers the gateway's tests and bench drive are installed, from Debian:
# chromium (Playwright drives the system browser through executable_path; it downloads no browser of
# its own) and chromium-driver; firefox-esr (driven over Marionette, bench/gateway_firefox.py) with
# pulseaudio + pulseaudio-utils, the private sound server whose null sinks are its microphone and speaker.
exec "$(dirname "$0")/ensure_debian_packages.sh" browser chromium chromium-driver firefox-esr pulseaudio pulseaudio-utils
