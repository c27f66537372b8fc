// Password change and token revocation on the play page: one account
// signed in from two browsers; a wrong current password is refused on the
// page; the password is changed in one browser, which stays signed in on
// a fresh token (a reload resumes it), while the other is sent to the
// sign-in screen with a clear message, and a third that remembered the
// player gets the same screen on its next visit. The old password no
// longer signs in, the new one does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launch, open, screenshot, api, guest } from './lib.mjs';

/** signIn signs page in to account with password and waits for the lobby. */
async function signIn(page, account, password) {
  await page.click('#signin-box summary');
  await page.fill('#signin-account', account);
  await page.fill('#signin-password', password);
  await page.click('#signin');
  await page.waitForSelector('#view-lobby:not([hidden])');
  await page.waitForSelector('#net.ok'); // the /v1/play socket is open
}

/** real drops the refused requests the test expects (a revoked token, a wrong password) from errors. */
function real(errors) {
  return errors.filter((e) => !/status of 401|Unexpected response code: 401|HTTP Authentication failed/.test(e));
}

/** chatAnswers opens a chat WebSocket from page with token: 'open', or 'refused'. */
function chatAnswers(page, url, token) {
  return page.evaluate(([u, t]) => new Promise((done) => {
    const ws = new WebSocket(`${u}?token=${encodeURIComponent(t)}`);
    ws.onopen = () => { ws.close(); done('open'); };
    ws.onerror = () => done('refused');
  }), [url, token]);
}

test('changing the password signs the other browsers out', { timeout: 60_000 }, async () => {
  const account = `pw${Date.now() % 1e9}`;
  const browser = await launch();
  try {
    // a: a guest saves its player as an account.
    const a = await guest(browser, 'Pat', { queue: false });
    await a.page.fill('#account-new', account);
    await a.page.fill('#account-password', 'first password');
    await a.page.click('#account-save');
    await a.page.waitForSelector('#account-named:not([hidden])');
    const uuid = (await a.page.textContent('#my-id')).trim();
    // b: another browser signs in to it.
    const b = await open(browser, '/');
    await signIn(b.page, account, 'first password');
    assert.equal((await b.page.textContent('#my-id')).trim(), uuid);
    // c: a browser that remembers the player from an earlier visit (a
    // token of its own; the account's login limit is spent on the rest).
    const c = await open(browser, '/');
    const tabToken = await a.page.evaluate(() => sessionStorage.getItem('arena.token'));
    const earlier = await api('POST', '/v1/refresh', { token: tabToken });
    await c.page.evaluate((t) => localStorage.setItem('arena.remember', JSON.stringify({ token: t, username: 'Pat' })), earlier.token);
    await c.page.close();

    const bOld = await b.page.evaluate(() => sessionStorage.getItem('arena.token'));

    // A wrong current password says so and changes nothing.
    await a.page.waitForSelector('#account-named:not([hidden])');
    await a.page.click('#password-box summary');
    await a.page.fill('#password-current', 'not my password');
    await a.page.fill('#password-new', 'second password');
    await a.page.click('#password-save');
    await a.page.waitForSelector('#password-error:not([hidden])');
    assert.equal((await a.page.textContent('#password-error')).trim(), 'Wrong current password.');
    await screenshot(a.page, 'accounts-change-password');
    assert.equal(await b.page.isVisible('#view-lobby'), true, 'a refused change signs nobody out');

    await a.page.fill('#password-current', 'first password');
    await a.page.fill('#password-new', 'second password');
    await a.page.click('#password-save');
    await a.page.waitForSelector('#password-error', { state: 'hidden' });
    await a.page.waitForSelector('#password-box:not([open])');

    // The other browser is sent to the sign-in screen, told why, with
    // the account's name filled in.
    await b.page.waitForSelector('#view-login:not([hidden])');
    await b.page.waitForSelector('#banner:has-text("password was changed")');
    assert.equal(await b.page.inputValue('#signin-account'), account);
    await screenshot(b.page, 'accounts-signed-out-elsewhere');

    // This browser stays signed in, on the fresh token it remembers.
    await a.page.waitForSelector('#net.ok');
    const stored = await a.page.evaluate(() => ({
      tab: sessionStorage.getItem('arena.token'),
      kept: JSON.parse(localStorage.getItem('arena.remember') || 'null'),
    }));
    assert.ok(stored.tab && stored.kept && stored.kept.token === stored.tab, 'the remembered token is the fresh one');
    const me = await api('GET', '/v1/me', { token: stored.tab });
    assert.equal(me.uuid, uuid);
    // The chat server refuses the other browser's old token too.
    const { chat } = await api('GET', '/v1/config');
    assert.equal(await chatAnswers(a.page, chat, bOld), 'refused', 'chat refuses a revoked token');
    assert.equal(await chatAnswers(a.page, chat, stored.tab), 'open', 'chat takes the fresh token');
    await a.page.reload();
    await a.page.waitForSelector('#view-lobby:not([hidden])');
    await a.page.waitForSelector('#net.ok');
    assert.equal((await a.page.textContent('#my-id')).trim(), uuid);

    // The browser that remembered the player: its next visit gets the
    // sign-in screen and the reason, and forgets the player.
    const later = await c.context.newPage();
    await later.goto(new URL('/', a.page.url()).toString());
    await later.waitForSelector('#remembered:not([hidden])');
    await later.click('#continue');
    await later.waitForSelector('#banner:has-text("password was changed")');
    await later.waitForSelector('#remembered', { state: 'hidden' });
    assert.equal(await later.isVisible('#view-login'), true);

    // The old password is refused, the new one signs in.
    await b.page.fill('#signin-password', 'first password');
    await b.page.click('#signin');
    await b.page.waitForSelector('#signin-error:not([hidden])');
    assert.equal((await b.page.textContent('#signin-error')).trim(), 'Wrong account or password.');
    await b.page.fill('#signin-password', 'second password');
    await b.page.click('#signin');
    await b.page.waitForSelector('#view-lobby:not([hidden])');
    await b.page.waitForSelector('#net.ok');
    assert.equal((await b.page.textContent('#my-id')).trim(), uuid);

    for (const p of [a, b]) assert.deepEqual(real(p.errors), []);
  } finally {
    await browser.close();
  }
});
