// What a real browser (Debian's chromium) is allowed to do with a LAN Chat host:
//   node origins.mjs PORT
// 1. A page of another origin (the host's own page under another name, so the browser sends
//    an Origin that does not match) cannot open the host's WebSocket.
// 2. A name that is not the host's (DNS rebinding: evil.example resolved to the host) gets
//    no page.
// 3. The host's own page opens it.
// Prints one line per check ("foreign origin: refused", ...); exits non-zero on failure.
import { chromium } from 'playwright-core';

const [port] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--ignore-certificate-errors', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--host-resolver-rules=MAP evil.example 127.0.0.1`,
  ],
});
const opens = (page, url) => page.evaluate((u) => new Promise((resolve) => {
  const ws = new WebSocket(u);
  ws.onopen = () => { ws.close(); resolve('opened'); };
  ws.onerror = () => resolve('refused');
}), url);
try {
  const page = await browser.newPage();
  await page.goto(`https://127.0.0.1:${port}/`);
  const foreign = await opens(page, `wss://localhost:${port}/ws`);
  console.log(`foreign origin: ${foreign}`);
  const own = await opens(page, `wss://127.0.0.1:${port}/ws`);
  console.log(`own origin: ${own}`);
  const rebound = await page.goto(`https://evil.example:${port}/`);
  console.log(`rebinding name: ${rebound.status()}`);
  if (foreign !== 'refused' || own !== 'opened' || rebound.status() !== 421) process.exit(1);
} finally {
  await browser.close();
}
