// Pages back and searches from a real browser (Debian's chromium, driven by playwright-core):
// joins a room with a long history, scrolls to the top until the room's first message is
// shown (older pages come from the host's /history), checks the page never holds more than
// about 500 messages, then searches with Ctrl+F and opens the result.
//
//   node history.mjs URL ROOM NICK FIRST_TEXT WORD
//
// Prints "joined", "reached the first message after N scrolls, at most M in the page",
// "found N", "opened"; exits non-zero on any failure.
import { joinFromList, launchChromium } from './launch.mjs';

const [url, room, nick, first, word] = process.argv.slice(2);
const step = (text) => console.log(text);

const browser = await launchChromium();
try {
  const page = await (await browser.newContext()).newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await joinFromList(page, url, room, nick);
  step('joined');

  let scrolls = 0;
  let most = 0;
  for (;;) {
    const state = await page.evaluate((text) => {
      const m = document.getElementById('messages');
      m.scrollTop = 0;
      return {
        reached: m.textContent.includes(text),
        count: m.querySelectorAll('li.message, li.system').length,
      };
    }, first);
    most = Math.max(most, state.count);
    if (state.reached) break;
    scrolls += 1;
    if (scrolls > 2000) throw new Error('never reached the first message');
    await page.waitForTimeout(30);
  }
  step(`reached the first message after ${scrolls} scrolls, at most ${most} in the page`);

  await page.click('#jump-button');
  await page.keyboard.press('Control+f');
  await page.fill('#search-input', word);
  await page.keyboard.press('Enter');
  const hit = page.locator('#search-results .search-hit').first();
  await hit.waitFor({ timeout: 10000 });
  step(`found ${await page.locator('#search-results .search-hit').count()}`);
  await hit.click();
  await page.locator('#messages .message.found', { hasText: word }).waitFor({ timeout: 10000 });
  step('opened');
  if (problems.length) throw new Error(problems.join('; '));
} finally {
  await browser.close();
}
