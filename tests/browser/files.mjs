// Shares and saves files from a real browser (Debian's chromium, driven by playwright-core):
// picks a file with the page's File button, watches the upload's progress events, waits
// for the card of an image someone else shares, checks its thumbnail is shown, and saves
// that image with the page's Save button.
//
//   node files.mjs URL ROOM NICK UPLOAD_PATH
//
// Prints "joined", "uploaded N progress events, last L", "thumbnail WxH",
// "downloaded BYTES SHA256"; exits non-zero on any failure.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { joinFromList, launchChromium } from './launch.mjs';

const [url, room, nick, upload] = process.argv.slice(2);
const step = (text) => console.log(text);

const browser = await launchChromium();
try {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // Records the upload's progress events as the page's own XHR reports them.
  await page.addInitScript(() => {
    window.uploadProgress = [];
    const open = XMLHttpRequest.prototype.open;
    XMLHttpRequest.prototype.open = function (...args) {
      this.upload.addEventListener('progress', (e) => window.uploadProgress.push(e.loaded));
      return open.apply(this, args);
    };
  });

  await joinFromList(page, url, room, nick);
  step('joined');

  const chooser = page.waitForEvent('filechooser');
  await page.click('#file-button');
  await (await chooser).setFiles(upload);
  const name = upload.split('/').pop();
  await page.locator('.message.file.own .file-name', { hasText: name }).waitFor({ timeout: 30000 });
  const progress = await page.evaluate(() => window.uploadProgress);
  step(`uploaded ${progress.length} progress events, last ${progress.at(-1)}`);

  // Someone else's image: its thumbnail is shown, and Save downloads it.
  const card = page.locator('.message.file.other').first();
  await card.waitFor({ timeout: 30000 });
  const thumb = card.locator('img.thumb');
  await page.waitForFunction(
    (img) => img && img.complete && img.naturalWidth > 0,
    await thumb.elementHandle(),
    { timeout: 10000 },
  );
  const size = await thumb.evaluate((img) => `${img.naturalWidth}x${img.naturalHeight}`);
  step(`thumbnail ${size}`);
  const download = page.waitForEvent('download');
  await card.locator('button', { hasText: 'Save' }).click();
  const saved = await (await download).path();
  const bytes = await readFile(saved);
  step(`downloaded ${bytes.length} ${createHash('sha256').update(bytes).digest('hex')}`);
  if (problems.length) throw new Error(problems.join('; '));
} finally {
  await browser.close();
}
