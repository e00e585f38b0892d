// Undoing a fix from the case page: the agent restores the state it recorded before the
// change (a real xrdp.ini in a temporary directory, changed and restored by the real agent).
import { expect, Page, test } from '@playwright/test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { baseUrl, fillCaseForm, openHome } from './portal';

function iniWithSecurityLayer(layer: string) {
  const path = join(mkdtempSync(join(tmpdir(), 'rdp-doctor-e2e-')), 'xrdp.ini');
  writeFileSync(path, `[Globals]\nport=3389\nsecurity_layer=${layer}\n`);
  return path;
}

const securityLayer = (path: string) => /security_layer=(\w+)/.exec(readFileSync(path, 'utf8'))![1];

async function caseWithAppliedFix(page: Page, hydrated: boolean) {
  await openHome(page, { hydrated });
  await fillCaseForm(page, '127.0.0.1', process.env.OPEN_PORT!);
  await page.getByRole('button', { name: 'Check my connection' }).click();
  await expect(page).toHaveURL(/\/cases\/[0-9a-f-]{36}$/);
  const caseId = page.url().split('/').pop()!;
  const ini = iniWithSecurityLayer('tls');
  const queued = await page.request.post(`${baseUrl()}/api/v1/cases/${caseId}/fixes`, {
    data: { fix: 'xrdp-set-security-layer-negotiate', params: { config: ini } },
  });
  expect(queued.status()).toBe(202);
  const run = page.locator('li.fix-run[data-fix-run="xrdp-set-security-layer-negotiate"]');
  // With JavaScript the case's events bring it; without, the page is reloaded.
  await expect(async () => {
    if (!hydrated) await page.reload();
    await expect(run).toHaveAttribute('data-state', 'applied', { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  expect(securityLayer(ini)).toBe('negotiate');
  return { run, ini };
}

for (const hydrated of [true, false]) {
  test.describe(hydrated ? 'with JavaScript' : 'without JavaScript', () => {
    test.use({ javaScriptEnabled: hydrated });

    test('a fix applied for the case is undone from the agent\'s snapshot', async ({ page }) => {
      const { run, ini } = await caseWithAppliedFix(page, hydrated);
      await run.getByRole('button', { name: 'Undo this change' }).click();
      await expect(run).toHaveAttribute('data-state', 'rolled-back');
      await expect(run.locator('.fix-state')).toContainText('Rolled back');
      // Nothing left to undo, and the file is as it was before the fix.
      await expect(run.getByRole('button', { name: 'Undo this change' })).toHaveCount(0);
      expect(securityLayer(ini)).toBe('tls');
    });
  });
}
