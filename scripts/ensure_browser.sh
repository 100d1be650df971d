#!/usr/bin/env bash
# Make sure the headless browser the gateway's tests and bench drive is installed: Debian's chromium
# (Playwright drives the system browser through executable_path; it downloads no browser of its
# own) and chromium-driver.
exec "$(dirname "$0")/ensure_debian_packages.sh" browser chromium chromium-driver
