// Drives the ashi page in headless Chromium like a person would: sign in with the demo
// account, wait for the drawing of the feet, the diagnosis and the shoe the page picked as
// the best fit, then pick a shoe that fits badly. In both states it takes full-page
// screenshots at 1280, 768 and 360 px wide and measures whether anything is wider than the
// viewport or its card. Prints what the page showed as one JSON line.
//
// usage: node web-flow.mjs <chromium> <page url> <poorly fitting shoe id> <screenshot dir>

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const WIDTHS = [1280, 768, 360];
const [executablePath, url, poorShoeId, screenshotDir] = process.argv.slice(2);
mkdirSync(screenshotDir, { recursive: true });
const browser = await chromium.launch({
  executablePath,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});

/** What the shoe card shows: the shoe picked, the verdict, the size and its fit. */
function recommendation() {
  const rec = document.querySelector('#recommendation');
  const shoe = document.querySelector('#shoe');
  const text = (selector) => document.querySelector(selector).textContent.replace(/\s+/g, ' ').trim();
  return {
    shoe: shoe.value,
    shoeFirstListed: shoe.options[0]?.value ?? null,
    groups: [...shoe.querySelectorAll('optgroup')].map((g) => ({
      label: g.label,
      shoes: [...g.querySelectorAll('option')].map((o) => o.value),
    })),
    shownFor: rec.dataset.shoe,
    fit: rec.dataset.fit,
    sizeMm: Number(rec.dataset.sizeMm),
    verdict: text('#verdict'),
    detail: text('#verdict-detail'),
    text: rec.innerText.replace(/\s+/g, ' ').trim(),
    fits: Object.fromEntries(
      [...document.querySelectorAll('#fit-rows tr')].map((row) => [row.dataset.dimension, row.querySelector('.fit').textContent]),
    ),
  };
}

/**
 * Whether the layout fits the viewport: the page's scroll width, each visible card's scroll
 * and client width, and every visible element that sticks out of the viewport or of its card.
 * Content inside a `.scroll` box (a table that may scroll on its own) counts as its box.
 */
function layout() {
  const visible = (el) => !el.closest('[hidden]') && el.getClientRects().length > 0;
  const name = (el) => {
    if (el.id) return `#${el.id}`;
    const classes = typeof el.className === 'string' && el.className ? `.${el.className.trim().split(/\s+/).join('.')}` : '';
    const parent = el.parentElement?.closest('[id]');
    return `${parent ? `#${parent.id} ` : ''}${el.tagName.toLowerCase()}${classes}`;
  };
  const viewport = document.documentElement.clientWidth;
  const overflowing = [];
  for (const el of document.querySelectorAll('body *')) {
    if (!visible(el)) continue;
    // A scroll box (while it does scroll) or a drawing is one box: what is inside it cannot
    // widen the page.
    const scrollBox = el.parentElement.closest('.scroll');
    if (scrollBox && getComputedStyle(scrollBox).overflowX !== 'visible') continue;
    if (el.parentElement.closest('svg')) continue;
    const box = el.getBoundingClientRect();
    if (box.left < -0.5 || box.right > viewport + 0.5) {
      overflowing.push(`${name(el)} spans ${box.left.toFixed(1)} to ${box.right.toFixed(1)} px of a ${viewport} px viewport`);
    }
    const card = el.parentElement.closest('.card');
    if (card) {
      const inner = card.getBoundingClientRect();
      if (box.left < inner.left - 0.5 || box.right > inner.right + 0.5) {
        overflowing.push(`${name(el)} spans ${box.left.toFixed(1)} to ${box.right.toFixed(1)} px, outside its card (#${card.id}: ${inner.left.toFixed(1)} to ${inner.right.toFixed(1)} px)`);
      }
    }
  }
  return {
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    cards: [...document.querySelectorAll('.card')].filter(visible).map((card) => ({
      id: card.id,
      scrollWidth: card.scrollWidth,
      clientWidth: card.clientWidth,
    })),
    scrollBoxes: [...document.querySelectorAll('.scroll')].filter(visible).map((box) => ({
      table: box.querySelector('table')?.id,
      scrolls: box.scrollWidth > box.clientWidth,
    })),
    overflowing,
  };
}

try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: WIDTHS[0], height: 900 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  const grpcWebCalls = [];
  page.on('request', (r) => r.headers()['content-type'] === 'application/grpc-web+proto' && grpcWebCalls.push(new URL(r.url()).pathname));

  const screenshots = [];
  const layouts = [];
  async function atEveryWidth(state) {
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: 900 });
      await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
      const path = join(screenshotDir, `${state}-${width}.png`);
      await page.screenshot({ path, fullPage: true });
      screenshots.push(path);
      layouts.push({ state, width, ...(await page.evaluate(layout)) });
    }
  }

  await page.goto(url);
  await page.fill('#username', 'demo');
  await page.fill('#password', 'demo');
  await page.click('#sign-in button');
  await page.waitForSelector('#feet svg path.foot', { timeout: 15000 });
  await page.waitForSelector('#diagnosis-rows td[data-side="right"]', { timeout: 15000 });
  // The page picks the best fitting shoe itself and shows its size; nobody clicks anything.
  await page.waitForSelector('#recommendation:not([hidden]) #fit-rows tr', { timeout: 15000 });
  const chosen = await page.evaluate(recommendation);
  await atEveryWidth('best-fit');

  await page.selectOption('#shoe', poorShoeId);
  await page.waitForSelector(`#recommendation[data-shoe="${poorShoeId}"]:not([hidden])`, { timeout: 15000 });
  const picked = await page.evaluate(recommendation);
  await atEveryWidth('poor-fit');

  const shown = await page.evaluate(() => ({
    feet: document.querySelectorAll('#feet svg path.foot').length,
    marks: [...document.querySelectorAll('#feet [data-mark]')].map((m) => `${m.dataset.mark}: ${m.textContent}`),
    diagnosis: ['left', 'right'].map((side) => ({
      side,
      jis: document.querySelector(`#diagnosis-rows td.jis[data-side="${side}"]`)?.textContent ?? '',
      cells: [...document.querySelectorAll(`#diagnosis-rows td[data-side="${side}"]`)].map((td) => td.textContent),
    })),
    error: document.querySelector('#error').hidden ? null : document.querySelector('#error').textContent,
  }));
  console.log(JSON.stringify({ ...shown, chosen, picked, layouts, screenshots, grpcWebCalls, consoleErrors }));
} finally {
  await browser.close();
}
