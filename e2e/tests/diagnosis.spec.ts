// The diagnosis on the case page: likely causes, one question at a time, fixes in order.
import { expect, Page, test } from '@playwright/test';
import { fillCaseForm, openHome } from './portal';

async function openCase(page: Page, hydrated: boolean) {
  await openHome(page, { hydrated });
  await fillCaseForm(page, '127.0.0.1', process.env.OPEN_PORT!);
  await page.getByRole('button', { name: 'Check my connection' }).click();
  await expect(page).toHaveURL(/\/cases\/[0-9a-f-]{36}$/);
  const panel = page.locator('section.diagnosis');
  await expect(panel.getByRole('heading', { name: 'What is most likely wrong' })).toBeVisible();
  await expect(panel.locator('ol.causes li').first()).toContainText('%');
  await expect(panel.locator('ol.fixes li').first()).toBeVisible();
  return panel;
}

async function answerOnce(page: Page, panel: ReturnType<Page['locator']>) {
  const question = panel.locator('[data-question]');
  await expect(question).toBeVisible();
  const asked = await question.getAttribute('data-question');
  await question.locator('button[data-answer]').first().click();
  // The next question replaces it (or the engine says it knows enough).
  await expect(panel.locator(`[data-question="${asked}"]`)).toHaveCount(0);
  return asked;
}

test('answering a question moves the diagnosis on without a reload', async ({ page }) => {
  const panel = await openCase(page, true);
  await page.evaluate(() => ((window as any).__sameDocument = true));
  await answerOnce(page, panel);
  await expect(panel.locator('ol.causes li').first()).toContainText('%');
  expect(await page.evaluate(() => (window as any).__sameDocument)).toBe(true);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('an answer is a form post that comes back one question further', async ({ page }) => {
    const panel = await openCase(page, false);
    await answerOnce(page, panel);
    await expect(page).toHaveURL(/\/cases\/[0-9a-f-]{36}$/);
  });
});

async function applyAndReport(page: Page, panel: ReturnType<Page['locator']>) {
  // The first suggested fix an agent can apply: ask for it, and see what the agent did.
  const fix = panel.locator('ol.fixes li', { has: page.getByRole('button', { name: 'Apply it for me' }) }).first();
  await expect(fix).toBeVisible();
  const fixId = await fix.getAttribute('data-fix');
  await fix.getByRole('button', { name: 'Apply it for me' }).click();
  const runs = page.locator('ul.fix-runs li.fix-run');
  await expect(runs).toHaveCount(1);
  // This agent runs on Linux: a Windows fix is refused with the reason, a clear final state.
  await expect(runs.first().locator('.fix-state')).not.toContainText('Waiting for the agent', { timeout: 20_000 });
  await expect(runs.first().locator('.fix-state')).not.toBeEmpty();
  // Saying it did not help takes it off the list and reorders the rest.
  await panel.locator(`ol.fixes li[data-fix="${fixId}"] button[data-worked="false"]`).click();
  await expect(panel.locator(`ol.fixes li[data-fix="${fixId}"]`)).toHaveCount(0);
}

test('a suggested fix is applied by the agent and its outcome recorded', async ({ page }) => {
  const panel = await openCase(page, true);
  await applyAndReport(page, panel);
});

test.describe('fixes without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('applying a fix and saying it failed are plain form posts', async ({ page }) => {
    const panel = await openCase(page, false);
    await applyAndReport(page, panel);
  });
});

test('the browser works out an answer itself before the server has stored it', async ({ page }) => {
  const panel = await openCase(page, true);
  // Let the case's own checks finish first, so that only the answer moves the diagnosis.
  await expect(page.locator('[aria-busy]')).toHaveAttribute('aria-busy', 'false', { timeout: 30_000 });
  await expect(panel).toHaveAttribute('data-local-engine', 'true');
  const question = panel.locator('[data-question]');
  await expect(question).toBeVisible();
  const asked = await question.getAttribute('data-question');

  // Hold the answer on its way to the server.
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  let sent = 0;
  await page.route('**/api/answer', async (route) => {
    sent += 1;
    await held;
    await route.continue();
  });
  await question.locator('button[data-answer]').first().click();

  // The card moves on while the server has not even received the answer.
  await expect(panel).toHaveAttribute('data-preview', 'true');
  await expect(panel.getByRole('status').filter({ hasText: 'saving your answer' })).toBeVisible();
  await expect(panel.locator(`[data-question="${asked}"]`)).toHaveCount(0);
  expect(sent).toBe(1);
  const previewCauses = (await panel.locator('ol.causes').textContent()) ?? '';
  const previewFixes = await panel.locator('ol.fixes li').evaluateAll((items) => items.map((i) => i.getAttribute('data-fix')));
  const nextQuestion = async () =>
    (await panel.locator('[data-question]').count()) ? panel.locator('[data-question]').getAttribute('data-question') : null;
  const previewNext = await nextQuestion();

  // The server's result replaces the preview, and it is the same: one engine, same inputs.
  release();
  await expect(panel).toHaveAttribute('data-preview', 'false', { timeout: 15_000 });
  await expect(panel.locator('ol.causes')).toHaveText(previewCauses);
  const serverFixes = await panel.locator('ol.fixes li').evaluateAll((items) => items.map((i) => i.getAttribute('data-fix')));
  expect(serverFixes).toEqual(previewFixes);
  expect(await nextQuestion()).toBe(previewNext);
});
