// Drives Debian's Chromium through the review pages: sign in, open the queue, open one draft,
// edit the reply, approve. Prints what it saw as JSON; tests/review_pages.rs checks it.
//   node tests/browser/review.mjs BASE_URL SECRET SUMMARY_ID SCREENSHOT_PATH
import { chromium } from 'playwright-core';

const [base, secret, id, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const out = {};
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(20000);
  out.dialogs = 0;
  page.on('dialog', (d) => { out.dialogs += 1; d.dismiss(); });
  const violations = [];
  page.on('console', (m) => { if (m.type() === 'error') violations.push(m.text()); });

  await page.goto(`${base}/review`);
  out.redirected_to_sign_in = new URL(page.url()).pathname === '/review/sign-in';
  await page.fill('#reviewer', 'anna@cs.example');
  await page.fill('#secret', secret);
  await Promise.all([page.waitForURL(`${base}/review`), page.press('#secret', 'Enter')]);
  out.queue_title = await page.textContent('h1');
  out.queue_has_item = (await page.locator(`a[href="/review/${id}"]`).count()) === 1;

  await Promise.all([page.waitForURL(`${base}/review/${id}`), page.click(`a[href="/review/${id}"]`)]);
  const draft = await page.inputValue('#reply');
  out.draft = draft;
  out.script_elements = await page.locator('script').count();
  await page.fill('#reply', `${draft}\nEdited in the browser.`);
  await page.click('#approve');
  await page.waitForSelector('#final');
  out.status = (await page.textContent('#status')).trim();
  out.final_text = await page.textContent('#final');
  await page.screenshot({ path: shot, fullPage: true });
  out.console_errors = violations;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
