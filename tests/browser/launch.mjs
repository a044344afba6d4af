// Debian's chromium, driven by playwright-core, set up the same way for every browser test:
// headless, no sandbox (tests run as root in a namespace), nothing phoning home.
import { chromium } from 'playwright-core';

export function launchChromium() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu',
      // LAN Chat hosts make their own certificates; the tests check keys themselves.
      '--ignore-certificate-errors', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}
