import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

import { eventually } from '../api/api-helpers.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.ts';
import type { TestEnv } from '../helpers/env.ts';

/** Debian's Chromium, driven by playwright-core (never a downloaded browser). */
export const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  browser: Browser;
  /** A fresh context per user (its own sessionStorage). */
  page(options?: { width?: number; height?: number }): Promise<WatchedPage>;
  close(): Promise<void>;
}

/** A page whose requests and console errors are recorded, to prove nothing leaves the daemon's origin. */
export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  requests: string[];
  consoleErrors: string[];
}

export async function launch(): Promise<TestBrowser> {
  // playwright gives every launch a fresh profile folder of its own (and removes it on close).
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  const contexts: BrowserContext[] = [];
  return {
    browser,
    page: async (options = {}) => {
      const context = await browser.newContext({
        viewport: { width: options.width ?? 1280, height: options.height ?? 860 },
      });
      contexts.push(context);
      const page = await context.newPage();
      const watched: WatchedPage = { page, context, requests: [], consoleErrors: [] };
      page.on('request', (r) => watched.requests.push(r.url()));
      page.on('console', (m) => {
        if (m.type() === 'error') watched.consoleErrors.push(m.text());
      });
      page.on('pageerror', (e) => watched.consoleErrors.push(String(e)));
      return watched;
    },
    close: async () => {
      for (const c of contexts) await c.close().catch(() => undefined);
      await browser.close();
    },
  };
}

/** Start the daemon from dist/ and read the URL its API listens on. */
export async function bootDaemon(env: TestEnv): Promise<{ proc: DaemonProcess; url: string }> {
  const urlFile = path.join(env.root, 'api-url');
  const proc = await startDaemon(env.etc, env.spool, { extraArgs: ['--api-url-file', urlFile] });
  const url = await eventually(
    () => existsSync(urlFile) && readFileSync(urlFile, 'utf8').trim(),
    15_000,
    'API url',
  );
  return { proc, url };
}
