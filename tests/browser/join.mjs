// Joins a LAN Chat room from a real browser, as someone without the app would: open the
// host's link in Debian's chromium (driven by playwright-core), pick a nickname, join the
// room from the host's list, send a message and wait for an answer.
//
//   node join.mjs URL ROOM NICK REPLY
//
// Prints one line per step on stdout ("joined", "delivered", "received ...", "kept ...") so
// the test driving the other side knows where it is; exits non-zero on any failure.
import { joinFromList, launchChromium } from './launch.mjs';

const [url, room, nick, reply] = process.argv.slice(2);
const step = (text) => console.log(text);

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });

  await joinFromList(page, url, room, nick);
  step('joined');

  await page.fill('#message-input', 'hello from the browser');
  await page.press('#message-input', 'Enter');
  await page.locator('.message.own .tick', { hasText: '✓' }).waitFor();
  step('delivered');

  await page.locator('#messages').getByText(reply).waitFor({ timeout: 20000 });
  step(`received ${reply}`);

  // The nickname is kept in the browser for next time.
  step(`kept ${await page.evaluate(() => localStorage.getItem('lanchat.nickname'))}`);
  if (problems.length) throw new Error(problems.join('; '));

  // A browser that refuses to store anything (storage blocked) still joins with the name
  // the user picked; it is just not remembered.
  const strict = await browser.newPage();
  await strict.addInitScript(() => {
    Object.defineProperty(window, 'localStorage', {
      get() { throw new DOMException('storage is blocked', 'SecurityError'); },
    });
  });
  await strict.goto(url);
  await strict.fill('#nick-input', `${nick}2`);
  await strict.click('#nick-form button[type=submit]');
  await strict.click(`#room-list button[aria-label^="Join ${room}"]`, { timeout: 15000 });
  await strict.locator('#messages').getByText(`Welcome to ${room}, ${nick}2!`).waitFor();
  step('joined without storage');
} finally {
  await browser.close();
}
