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

/**
 * What a person does first on the host's page: open it, pick `nick`, join `room` from the
 * host's list, and see the welcome.
 */
export async function joinFromList(page, url, room, nick) {
  await page.goto(url);
  await page.fill('#nick-input', nick);
  await page.click('#nick-form button[type=submit]');
  await page.click(`#room-list button[aria-label^="Join ${room}"]`, { timeout: 15000 });
  await page.locator('#messages').getByText(`Welcome to ${room}, ${nick}!`).waitFor();
}
