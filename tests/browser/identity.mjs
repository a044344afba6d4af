// A browser is known to the host by its own key (ui/identity.js), not by its nickname:
//   node identity.mjs URL ROOM NICK
// 1. A browser joins as NICK and says something, then closes its tab.
// 2. Another browser (a separate profile: other storage, so another key) tries NICK: refused.
// 3. The first browser comes back in a new tab: same key, NICK is its own again.
// Prints "joined", "refused: ...", "rejoined"; exits non-zero on failure.
import { launchChromium } from './launch.mjs';

const [url, room, nick] = process.argv.slice(2);
const browser = await launchChromium();

async function tryJoin(context) {
  const page = await context.newPage();
  await page.goto(url);
  // A browser that was here before remembers its nickname and skips the question.
  const asked = page.locator('#screen-welcome:not([hidden])');
  const home = page.locator('#screen-home:not([hidden])');
  await asked.or(home).first().waitFor();
  if (await asked.isVisible()) {
    await page.fill('#nick-input', nick);
    await page.click('#nick-form button[type=submit]');
  }
  await page.click(`#room-list button[aria-label^="Join ${room}"]`, { timeout: 15000 });
  return page;
}

try {
  const first = await browser.newContext();
  let page = await tryJoin(first);
  await page.locator('#messages').getByText(`Welcome to ${room}, ${nick}!`).waitFor();
  await page.fill('#message-input', 'said by the first browser');
  await page.press('#message-input', 'Enter');
  await page.locator('.message.own .tick', { hasText: '✓' }).waitFor();
  console.log('joined');
  await page.close();

  const other = await browser.newContext();
  const intruder = await tryJoin(other);
  const refusal = intruder.locator('#messages').getByText('belongs to someone else');
  await refusal.waitFor({ timeout: 15000 });
  console.log(`refused: ${await refusal.first().textContent()}`);

  page = await tryJoin(first);
  await page.locator('#messages').getByText(`Welcome to ${room}, ${nick}!`).waitFor();
  // Its earlier message is shown as its own.
  await page.locator('.message.own', { hasText: 'said by the first browser' }).waitFor();
  console.log('rejoined');
} finally {
  await browser.close();
}
