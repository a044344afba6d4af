// A browser in a LAN Chat room, driven line by line from stdin, so a test can kill and
// restart the host in between and then count what the page shows:
//
//   node reconnect.mjs URL ROOM NICK
//   stdin:  send TEXT | expect TEXT | delivered | texts | quit
//   stdout: "joined", then "ok CMD" after each command ("texts" first prints one JSON line
//           with the text of every message shown, in order); exits non-zero on failure.
import { createInterface } from 'node:readline';
import { joinFromList, launchChromium } from './launch.mjs';

const [url, room, nick] = process.argv.slice(2);
const browser = await launchChromium();
let status = 0;
try {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await joinFromList(page, url, room, nick);
  console.log('joined');
  for await (const line of createInterface({ input: process.stdin })) {
    const [command, ...rest] = line.split(' ');
    const text = rest.join(' ');
    if (command === 'quit') break;
    if (command === 'send') {
      await page.fill('#message-input', text);
      await page.press('#message-input', 'Enter');
    } else if (command === 'expect') {
      await page.locator('#messages .message .text', { hasText: text }).first()
        .waitFor({ timeout: 30000 });
    } else if (command === 'delivered') {
      // Every message of ours is ticked: the host has them.
      await page.waitForFunction(() => [...document.querySelectorAll('.message.own .tick')]
        .every((t) => t.textContent === '✓'), null, { timeout: 30000 });
    } else if (command === 'texts') {
      const texts = await page.$$eval('#messages .message .text', (els) => els.map((e) => e.textContent));
      console.log(JSON.stringify(texts));
    } else {
      throw new Error(`unknown command ${line}`);
    }
    if (problems.length) throw new Error(problems.join('; '));
    console.log(`ok ${command}`);
  }
} catch (e) {
  console.error(e);
  status = 1;
} finally {
  await browser.close();
}
process.exit(status);
