// The same flow with JavaScript off: plain form posts, and a page that refreshes itself.
import { expect, test } from '@playwright/test';
import { agentReachability, fillCaseForm, openHome } from './portal';

test.use({ javaScriptEnabled: false });

test('without JavaScript the case opens by a form post and the result appears on refresh', async ({ page }) => {
  await openHome(page, { hydrated: false });
  await fillCaseForm(page, '127.0.0.1', process.env.NO_ANSWER_PORT!);
  await page.getByRole('button', { name: 'Check my connection' }).click();

  await expect(page).toHaveURL(/\/cases\/[0-9a-f-]{36}$/);
  // First the pending state, with the self-refresh that only a browser without JavaScript obeys
  // (Playwright's text matching ignores <noscript>, so look for the element itself).
  await expect(agentReachability(page).getByRole('status')).toContainText('Checking');
  await expect(page.locator('noscript meta[http-equiv="refresh"]')).toHaveCount(1);
  const firstLoad = await page.evaluate(() => performance.timeOrigin);

  const verdict = agentReachability(page).locator('[data-verdict]');
  await expect(verdict).toHaveAttribute('data-verdict', 'NoAnswer');
  await expect(verdict).toContainText('did not answer on port');
  // The result came with a new page load, and the refresh stops once the check is final.
  expect(await page.evaluate(() => performance.timeOrigin)).toBeGreaterThan(firstLoad);
  await expect(page.locator('noscript')).toHaveCount(0);
});

test('without JavaScript a refused form comes back with the message and the typed values', async ({ page }) => {
  await openHome(page, { hydrated: false });
  await fillCaseForm(page, 'bad host name!', '3389');
  await page.getByRole('button', { name: 'Check my connection' }).click();
  await expect(page.locator('#host-error')).toContainText('is not a valid computer name or address');
  await expect(page.getByLabel('Which computer are you connecting to?')).toHaveValue('bad host name!');
  await expect(page.getByLabel('Port (optional)')).toHaveValue('3389');
});
