// Shared helpers for the portal specs.
import { expect, Page } from '@playwright/test';

export const baseUrl = () => {
  const url = process.env.RDP_DOCTOR_URL;
  if (!url) throw new Error('RDP_DOCTOR_URL is not set: the global set-up did not run');
  return url;
};

/** Opens the home page; with JavaScript on, waits until the page is hydrated. */
export async function openHome(page: Page, { hydrated }: { hydrated: boolean }) {
  await page.goto(`${baseUrl()}/`);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText("Remote Desktop won't connect?");
  if (hydrated) await expect(page.locator('main')).toHaveAttribute('data-hydrated', 'true');
}

export async function fillCaseForm(page: Page, host: string, port: string) {
  await page.getByLabel('Which computer are you connecting to?').fill(host);
  await page.getByLabel('Port (optional)').fill(port);
  await page.getByLabel('Error code shown').fill('0x904');
  await page.getByLabel('Extended error code (if shown)').fill('0x7');
}

/** The agent's tcp-connect check on the case page (the first check of every case). */
export const agentReachability = (page: Page) => page.locator('article[data-check="tcp-connect"][data-runner="agent"]');

/** The same check run by the server itself, the second vantage point. */
export const serverReachability = (page: Page) => page.locator('article[data-check="tcp-connect"][data-runner="server"]');
