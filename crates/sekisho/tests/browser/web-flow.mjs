// Drives the ashi page in headless Chromium like a person would: sign in with the demo
// account, wait for the drawing of the feet and the diagnosis, pick a shoe, ask for a size.
// Prints what the page showed as one JSON line; saves a screenshot.
//
// usage: node web-flow.mjs <chromium> <page url> <shoe id> <screenshot.png>

import { chromium } from 'playwright-core';

const [executablePath, url, shoeId, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1000, height: 1400 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  const grpcWebCalls = [];
  page.on('request', (r) => r.headers()['content-type'] === 'application/grpc-web+proto' && grpcWebCalls.push(new URL(r.url()).pathname));

  await page.goto(url);
  await page.fill('#username', 'demo');
  await page.fill('#password', 'demo');
  await page.click('#sign-in button');
  await page.waitForSelector('#feet svg path.foot', { timeout: 15000 });
  await page.waitForSelector('#diagnosis-rows tr[data-side="right"]', { timeout: 15000 });
  await page.waitForSelector(`#shoe option[value="${shoeId}"]`, { state: 'attached', timeout: 15000 });

  await page.selectOption('#shoe', shoeId);
  await page.click('#shoes button');
  await page.waitForSelector('#recommendation:not([hidden]) #fit-rows tr', { timeout: 15000 });
  await page.screenshot({ path: screenshot, fullPage: true });

  const shown = await page.evaluate(() => ({
    feet: document.querySelectorAll('#feet svg path.foot').length,
    marks: [...document.querySelectorAll('#feet [data-mark]')].map((m) => `${m.dataset.mark}: ${m.textContent}`),
    diagnosis: [...document.querySelectorAll('#diagnosis-rows tr')].map((row) => ({
      side: row.dataset.side,
      jis: row.querySelector('.jis').textContent,
    })),
    bestSizeMm: Number(document.querySelector('#best-size').dataset.sizeMm),
    bestSize: document.querySelector('#best-size').textContent,
    fits: Object.fromEntries(
      [...document.querySelectorAll('#fit-rows tr')].map((row) => [row.dataset.dimension, row.querySelector('.fit').textContent]),
    ),
    error: document.querySelector('#error').hidden ? null : document.querySelector('#error').textContent,
  }));
  console.log(JSON.stringify({ ...shown, grpcWebCalls, consoleErrors }));
} finally {
  await browser.close();
}
