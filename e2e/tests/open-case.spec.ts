// An employee whose Remote Desktop failed opens a case and watches the check result arrive.
import { expect, test } from '@playwright/test';
import { agentReachability, fillCaseForm, openHome, serverReachability } from './portal';

test('the check result appears on the case page without a reload', async ({ page }) => {
  await openHome(page, { hydrated: true });
  await fillCaseForm(page, '127.0.0.1', process.env.NO_ANSWER_PORT!);
  await page.getByRole('button', { name: 'Check my connection' }).click();

  await expect(page).toHaveURL(/\/cases\/[0-9a-f-]{36}$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Connecting to 127.0.0.1');
  // Mark this document: a reload would lose the mark.
  await page.evaluate(() => ((window as any).__sameDocument = true));
  const check = agentReachability(page);
  await expect(check.getByRole('status')).toContainText('Checking');

  const verdict = check.locator('[data-verdict]');
  await expect(verdict).toHaveAttribute('data-verdict', 'NoAnswer');
  await expect(verdict).toContainText('did not answer on port');
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
  await expect(check.getByRole('cell', { name: 'no answer' })).toBeVisible();
  // The server checks from its own vantage point too, and says so.
  await expect(serverReachability(page).locator('[data-verdict]')).toHaveAttribute('data-verdict', 'NoAnswer');
  await expect(serverReachability(page)).toContainText('Checked from the RDP Doctor server');
  await expect(page.locator('.case-facts')).toContainText('0x904 (extended 0x7)');
});

test('a computer that accepts connections is reported as reachable, with timings', async ({ page }) => {
  await openHome(page, { hydrated: true });
  await fillCaseForm(page, '127.0.0.1', process.env.OPEN_PORT!);
  await page.getByRole('button', { name: 'Check my connection' }).click();

  const check = agentReachability(page);
  const verdict = check.locator('[data-verdict]');
  await expect(verdict).toHaveAttribute('data-verdict', 'Open');
  await expect(verdict).toContainText(`accepts connections on port ${process.env.OPEN_PORT}`);
  await expect(check.getByRole('cell', { name: 'open', exact: true })).toBeVisible();
  await expect(check.getByRole('cell', { name: / ms$/ })).toBeVisible();
  // The port is not an RDP server (it is the portal itself): the protocol check says so.
  await expect(page.locator('article[data-check="rdp-negotiate"] [data-verdict]')).toHaveAttribute('data-verdict', 'NotRdp');

  // The case is stored: loading its address afresh shows the same result.
  await page.reload();
  await expect(agentReachability(page).locator('[data-verdict]')).toHaveAttribute('data-verdict', 'Open');
});

test('bad input gets a specific message next to its field and keeps what was typed', async ({ page }) => {
  await openHome(page, { hydrated: true });
  await fillCaseForm(page, '', '');
  await page.getByRole('button', { name: 'Check my connection' }).click();
  const host = page.getByLabel('Which computer are you connecting to?');
  await expect(page.locator('#host-error')).toHaveText('Enter the name or address of the computer you are connecting to.');
  await expect(host).toHaveAttribute('aria-invalid', 'true');
  await expect(page).toHaveURL(/\/$/);

  await fillCaseForm(page, 'pc-0423', '70000');
  await page.getByRole('button', { name: 'Check my connection' }).click();
  await expect(page.locator('#port-error')).toContainText('from 1 to 65535');
  await expect(page.getByLabel('Port (optional)')).toHaveAttribute('aria-invalid', 'true');
  await expect(host).toHaveValue('pc-0423');
});

test('an unknown case says so with a 404', async ({ page }) => {
  const response = await page.goto(`${process.env.RDP_DOCTOR_URL}/cases/00000000-0000-4000-8000-000000000000`);
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('alert')).toContainText('We could not find this case');
});

test('the portal ships its release bundle, compressed, so it hydrates quickly over a slow link', async ({ page }) => {
  const bundle = page.waitForResponse((response) => response.url().endsWith('/pkg/rdp_doctor_bg.wasm'));
  await openHome(page, { hydrated: true });
  const response = await bundle;
  expect(response.status()).toBe(200);
  expect(response.headers()['content-encoding']).toBe('gzip');
  expect(response.headers()['content-type']).toBe('application/wasm');
  // The debug bundle is about 9.6 MB; the release bundle is 2 MB, 0.55 MB gzipped.
  const { responseBodySize } = await response.request().sizes();
  expect(responseBodySize).toBeGreaterThan(100_000);
  expect(responseBodySize).toBeLessThan(1_000_000);
});
