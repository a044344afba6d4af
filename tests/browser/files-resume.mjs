// An upload from a real browser (Debian's chromium) that outlives its host: the page
// shares a file, the test stops the host midway and starts it again, and the page goes
// on from where the host got (HEAD, then PUT of the rest) with its new ticket.
//
//   node files-resume.mjs URL ROOM NICK UPLOAD_PATH
//
// Prints "joined", "offsets O1 O2 ..." (where each PUT started) and "shared"; exits
// non-zero on any failure.
import { joinFromList, launchChromium } from './launch.mjs';

const [url, room, nick, upload] = process.argv.slice(2);
const step = (text) => console.log(text);

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.addInitScript(() => {
    window.putOffsets = [];
    const set = XMLHttpRequest.prototype.setRequestHeader;
    XMLHttpRequest.prototype.setRequestHeader = function (name, value) {
      if (name === 'Upload-Offset') window.putOffsets.push(Number(value));
      return set.call(this, name, value);
    };
  });
  await joinFromList(page, url, room, nick);
  step('joined');
  const chooser = page.waitForEvent('filechooser');
  await page.click('#file-button');
  await (await chooser).setFiles(upload);
  const name = upload.split('/').pop();
  await page.locator('.message.file.own .file-name', { hasText: name }).waitFor({ timeout: 60000 });
  step(`offsets ${(await page.evaluate(() => window.putOffsets)).join(' ')}`);
  step('shared');
  if (problems.length) throw new Error(problems.join('; '));
} finally {
  await browser.close();
}
