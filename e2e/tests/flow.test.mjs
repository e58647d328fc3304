// The whole sign-in loop in a real browser against `authkit dev`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startDev, launchBrowser, stepper, signInOnHostedPage } from './support.mjs';

let dev;
let browser;

before(async () => {
  dev = await startDev();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (dev) {
    const code = await dev.stop();
    assert.equal(code, 0, `authkit dev should stop cleanly on Ctrl-C:\n${dev.output()}`);
  }
});

test('sign in, switch organization, projects follow the organization, sign out', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const step = stepper(page, 'flow');

  await step('home', async () => {
    await page.goto(dev.admin);
    await page.getByTestId('sign-in').waitFor();
  });
  await step('hosted sign-in page', async () => {
    await page.getByTestId('sign-in').click();
    await page.waitForURL((url) => url.href.startsWith(dev.emulator));
    await page.locator('input[name=email]').waitFor();
  });
  await step('organization picker', async () => {
    await signInOnHostedPage(page, 'carol@example.test');
    await page.getByRole('button', { name: 'Acme' }).waitFor();
  });
  await step('dashboard shows the user', async () => {
    await page.getByRole('button', { name: 'Acme' }).click();
    await page.waitForURL(`${dev.admin}/dashboard`);
    assert.match(await page.getByTestId('user-email').innerText(), /carol@example\.test/);
    assert.match(await page.getByTestId('active-org').innerText(), /Acme/);
    assert.equal((await page.getByTestId('role').innerText()).trim(), 'admin');
    assert.match(await page.getByTestId('permissions').innerText(), /projects:write/);
  });
  await step('create a project', async () => {
    await page.fill('input[name=name]', 'Apollo');
    await page.getByRole('button', { name: 'Create project' }).click();
    await page.getByTestId('projects').getByText('Apollo').waitFor();
  });
  await step('switch organization', async () => {
    await page.selectOption('[data-testid=org-switcher] select', { label: 'Globex' });
    await page.getByRole('button', { name: 'Switch' }).click();
    await page.waitForURL(/\/dashboard/);
    assert.match(await page.getByTestId('active-org').innerText(), /Globex/);
    assert.equal((await page.getByTestId('role').innerText()).trim(), 'member');
  });
  await step('projects list follows the organization', async () => {
    await page.getByTestId('no-projects').waitFor();
    assert.equal(await page.getByText('Apollo').count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Create project' }).count(), 0);
  });
  await step('switch back', async () => {
    await page.selectOption('[data-testid=org-switcher] select', { label: 'Acme' });
    await page.getByRole('button', { name: 'Switch' }).click();
    await page.getByTestId('projects').getByText('Apollo').waitFor();
  });
  await step('sign out', async () => {
    await page.goto(`${dev.admin}/account`);
    await page.getByTestId('sign-out').click();
    await page.waitForURL(`${dev.admin}/`);
    await page.getByTestId('sign-in').waitFor();
  });
  await step('dashboard redirects to sign-in', async () => {
    await page.goto(`${dev.admin}/dashboard`);
    await page.waitForURL((url) => url.href.startsWith(dev.emulator));
    await page.locator('input[name=password]').waitFor();
  });
  await context.close();
});

test('a member gets the 403 page on an admin action', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const step = stepper(page, 'member');
  await step('sign in as a member', async () => {
    await page.goto(`${dev.admin}/login`);
    await signInOnHostedPage(page, 'bob@acme.test');
    await page.waitForURL(`${dev.admin}/dashboard`);
    assert.equal((await page.getByTestId('role').innerText()).trim(), 'member');
  });
  await step('members page offers no management', async () => {
    await page.goto(`${dev.admin}/members`);
    await page.getByTestId('members').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Remove' }).count(), 0);
  });
  await step('forged admin action gets 403', async () => {
    // A member crafting the admin's form by hand must get a readable 403, not a crash.
    const response = await Promise.all([
      page.waitForNavigation(),
      page.evaluate(() => {
        const form = document.createElement('form');
        form.method = 'post';
        form.action = '/projects';
        const input = document.createElement('input');
        input.name = 'name';
        input.value = 'Not allowed';
        form.appendChild(input);
        document.body.appendChild(form);
        form.submit();
      }),
    ]).then(([r]) => r);
    assert.equal(response.status(), 403);
    await page.getByTestId('error').getByText('403').waitFor();
  });
  await context.close();
});

test('a wrong password shows the emulator error', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const step = stepper(page, 'wrong-password');
  await step('wrong password', async () => {
    await page.goto(`${dev.admin}/login`);
    await signInOnHostedPage(page, 'alice@acme.test', 'not-the-password');
    assert.ok(page.url().startsWith(dev.emulator), `stays on the hosted page, got ${page.url()}`);
    await page.locator('.error').waitFor();
    assert.match(await page.locator('.error').innerText(), /password/i);
  });
  await context.close();
});

test('the directory page shows the users Directory Sync mirrored, for the active organization only', async () => {
  const acme = await browser.newContext();
  const page = await acme.newPage();
  const step = stepper(page, 'directory');
  await step('synced users of Acme', async () => {
    await page.goto(`${dev.admin}/login`);
    await signInOnHostedPage(page, 'alice@acme.test');
    await page.waitForURL(`${dev.admin}/dashboard`);
    // The sync worker polls every 2 s; reload until the seeded directory has arrived.
    const deadline = Date.now() + 30_000;
    for (;;) {
      await page.goto(`${dev.admin}/directory`);
      if (await page.getByTestId('directory-users').count()) break;
      if (Date.now() > deadline) throw new Error('directory users never appeared');
      await page.waitForTimeout(500);
    }
    const users = page.getByTestId('directory-users');
    await users.getByText('erin@acme.test').waitFor();
    const gina = users.locator('tr', { hasText: 'gina@acme.test' });
    assert.match(await gina.innerText(), /inactive/);
    const erin = users.locator('tr', { hasText: 'erin@acme.test' });
    assert.match(await erin.innerText(), /Engineering/);
  });
  await acme.close();

  const globex = await browser.newContext();
  const other = await globex.newPage();
  const step2 = stepper(other, 'directory-other-org');
  await step2('another organization sees none of them', async () => {
    await other.goto(`${dev.admin}/login`);
    await signInOnHostedPage(other, 'dave@globex.test');
    await other.waitForURL(`${dev.admin}/dashboard`);
    await other.goto(`${dev.admin}/directory`);
    await other.getByTestId('no-directory-users').waitFor();
    assert.equal(await other.getByText('erin@acme.test').count(), 0);
  });
  await globex.close();
});
