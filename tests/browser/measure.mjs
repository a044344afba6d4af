// Opens a LAN Chat room in a real browser (Debian's chromium) as someone without the app
// would, waits for a message containing MARKER, and prints, as one JSON line, how much of
// the page each message takes and how its text is isolated.
//
//   node measure.mjs URL ROOM NICK MARKER
import { launchChromium } from './launch.mjs';

const [url, room, nick, marker] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
  await page.goto(url);
  await page.fill('#nick-input', nick);
  await page.click('#nick-form button[type=submit]');
  await page.click(`#room-list button[aria-label^="Join ${room}"]`, { timeout: 15000 });
  await page.locator('#messages .message .text', { hasText: marker }).first()
    .waitFor({ timeout: 15000 });
  const measured = await page.evaluate(() => {
    const list = document.getElementById('messages').getBoundingClientRect();
    const messages = [...document.querySelectorAll('#messages .message')].map((m) => {
      const box = m.getBoundingClientRect();
      const text = m.querySelector('.text');
      return {
        width: Math.round(box.width),
        height: Math.round(box.height),
        scrollWidth: text.scrollWidth,
        bidi: getComputedStyle(text).unicodeBidi,
        fromBidi: getComputedStyle(m.querySelector('.from')).unicodeBidi,
      };
    });
    return { listWidth: Math.round(list.width), messages };
  });
  console.log(JSON.stringify(measured));
} finally {
  await browser.close();
}
