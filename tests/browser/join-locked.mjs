// Joins a locked LAN Chat room from a real browser (Debian's chromium): the page derives
// the room key with WebCrypto and answers the host's challenge, as the app does.
//
//   node join-locked.mjs URL ROOM NICK PASSPHRASE
//
// Prints "asked", "refused", "joined", "delivered" as it goes; exits non-zero on failure.
import { launchChromium } from './launch.mjs';

const [url, room, nick, passphrase] = process.argv.slice(2);
const step = (text) => console.log(text);

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  await page.goto(url);
  await page.fill('#nick-input', nick);
  await page.click('#nick-form button[type=submit]');
  await page.locator('#room-list .lock').first().waitFor({ timeout: 15000 });
  await page.click(`#room-list button[aria-label^="Join ${room}"]`);
  await page.locator('#passphrase-dialog[open]').waitFor();
  step('asked');

  await page.fill('#passphrase-input', `${passphrase} (wrong)`);
  await page.press('#passphrase-input', 'Enter');
  await page.locator('#passphrase-error', { hasText: 'Wrong passphrase' }).waitFor({ timeout: 15000 });
  step('refused');

  await page.fill('#passphrase-input', passphrase);
  await page.press('#passphrase-input', 'Enter');
  await page.locator('#messages').getByText(`Welcome to ${room}, ${nick}!`).waitFor({ timeout: 15000 });
  step('joined');

  await page.fill('#message-input', 'hello from a browser behind the lock');
  await page.press('#message-input', 'Enter');
  await page.locator('.message.own .tick', { hasText: '✓' }).waitFor();
  step('delivered');
  if (problems.length) throw new Error(problems.join('; '));
} finally {
  await browser.close();
}
