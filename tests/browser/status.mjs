// Status from a real browser: join a room, see who is away in the online list, pick Busy,
// and (the driving test checks) the others see it.
//
//   node status.mjs URL ROOM NICK AWAY_NICK
//
// Prints "joined", "sees AWAY_NICK away", "busy"; exits non-zero on any failure.
import { joinFromList, launchChromium } from './launch.mjs';

const [url, room, nick, awayNick] = process.argv.slice(2);
const step = (text) => console.log(text);

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });

  await joinFromList(page, url, room, nick);
  step('joined');

  // Someone away when we came: in the welcome, shown in the list.
  await page.locator(`#user-list .user[data-status="away"]`, { hasText: awayNick }).waitFor();
  step(`sees ${awayNick} away`);

  await page.selectOption('#status-select', 'busy');
  await page.locator(`#user-list .user[data-status="busy"]`, { hasText: nick }).waitFor();
  step('busy');
  // Stay until the test has seen it (it closes us).
  await page.locator('#messages').getByText('seen, thanks').waitFor({ timeout: 20000 });
  if (problems.length) throw new Error(problems.join('; '));
} finally {
  await browser.close();
}
