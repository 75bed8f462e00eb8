// Chromium (playwright-core, Debian's /usr/bin/chromium) against `docvlm serve`'s web page: upload with the
// keyboard, follow the progress, read the rendered result and the raw views, see the upload errors.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {mkdirSync, readFileSync} from 'node:fs';
import path from 'node:path';
import {chromium} from 'playwright-core';
import {startServer, here, repo} from './server.mjs';

const artifacts = path.resolve(process.env.DOCVLM_ARTIFACTS || path.join(here, 'artifacts'));
const SAMPLE = path.join(repo, 'examples', 'data', 'sample_page.png');
const TABLE = path.join(here, 'data', 'table_page.png');  // made by make_table_page.mjs
const GIF = path.join(repo, 'tests', 'data', 'upload', 'page.gif');
const PARSE_TIMEOUT = 120_000;

let server, browser, page;
const pageErrors = [];

before(async () => {
    mkdirSync(artifacts, {recursive: true});
    server = await startServer();
    browser = await chromium.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox']});
    page = await browser.newPage({viewport: {width: 1100, height: 900}});
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (e) => pageErrors.push(e.message));
});

after(async () => {
    await browser?.close();
    if (!server) return;
    const {code, signal} = await server.stop();
    assert.equal(signal, null, `server died of ${signal}\n${server.stderr}`);
    assert.equal(code, 0, `server exit code ${code}\n${server.stderr}`);
});

// A test that saves a screenshot of the page (artifacts/failed-NAME.png) when it fails.
function step(name, fn) {
    test(name, async () => {
        try {
            await fn();
        } catch (e) {
            const file = path.join(artifacts, 'failed-' + name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60) + '.png');
            await page?.screenshot({path: file, fullPage: true}).catch(() => {});
            e.message += `\n(screenshot: ${file})`;
            throw e;
        }
    });
}

const text = (sel) => page.locator(sel).innerText();
// Chooses a file and submits the form from the keyboard (focus on Parse, Enter).
async function submit(file) {
    await page.locator('#file').setInputFiles(file);
    assert.match(await text('#chosen'), new RegExp(path.basename(file).replace('.', '\\.')));
    await page.focus('#go');
    await page.keyboard.press('Enter');
}
async function waitForResult() {
    await page.waitForFunction(() => !document.getElementById('result').hidden && /^Done/.test(document.getElementById('status').textContent),
                               null, {timeout: PARSE_TIMEOUT});
}
// Text and <table> count of the rendered document (the frame is same-origin, scripts off).
async function renderedFrame() {
    await page.waitForFunction(() => {
        const f = document.querySelector('#view iframe');
        return f && f.contentDocument && f.contentDocument.readyState === 'complete' && f.contentDocument.body?.innerText.trim();
    });
    return page.evaluate(() => {
        const f = document.querySelector('#view iframe');
        const d = f.contentDocument;
        return {sandbox: f.getAttribute('sandbox'), text: d.body.innerText, tables: d.querySelectorAll('table').length,
                lists: d.querySelectorAll('ol, ul').length, cells: [...d.querySelectorAll('td, th')].map((c) => c.textContent.trim())};
    });
}
// The server's own Markdown for a file (the page must show exactly this).
async function serverMarkdown(file) {
    const body = new FormData();
    body.append('file', new Blob([readFileSync(file)], {type: 'image/png'}), path.basename(file));
    body.append('format', 'md');
    const res = await fetch(`${server.url}/v1/parse`, {method: 'POST', body});
    assert.equal(res.status, 200);
    return res.text();
}

step('the page loads its scripts and shows the model', async () => {
    const res = await page.goto(server.url + '/');
    assert.equal(res.status(), 200);
    assert.match(await page.title(), /docvlm/);
    await page.waitForFunction(() => document.getElementById('model').textContent === 'docvlm-small');
    assert.deepEqual(await page.evaluate(() => [typeof window.marked?.parse, typeof window.katex?.renderToString]), ['function', 'function'],
                     'marked and KaTeX load from /assets (Debian libjs-marked, libjs-katex)');
    assert.equal(await page.locator('#result').isHidden(), true);
    // Submitting with no file asks for one.
    await page.focus('#go');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.getElementById('error').textContent !== '');
    assert.match(await text('#error'), /choose a file/i);
    assert.deepEqual(pageErrors, []);
});

step('sample_page.png parsed from the keyboard: progress, rendered view, Markdown tab', async () => {
    await submit(SAMPLE);
    await waitForResult();
    assert.equal(await text('#error'), '');
    assert.match(await text('#status'), /^Done: 1 page\(s\)\.$/);
    const rows = page.locator('#pages li');
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().innerText(), /Page 1[\s\S]*done/);
    assert.deepEqual(await rows.first().locator('progress').evaluate((p) => [p.value, p.max]), [1, 1]);

    // Rendered: a sandboxed frame (no scripts) with the document as HTML.
    assert.equal(await page.getAttribute('#tab-rendered', 'aria-selected'), 'true');
    const frame = await renderedFrame();
    assert.equal(frame.sandbox, 'allow-same-origin', 'the rendered frame runs no scripts');
    assert.match(frame.text, /Introduction/);
    assert.match(frame.text, /Cotton et al/);
    assert.ok(frame.lists > 0, 'Markdown lists are rendered as HTML lists');
    await page.screenshot({path: path.join(artifacts, 'page.png'), fullPage: true});

    // ArrowRight from the focused tab: the Markdown tab, selected and focused, shows the server's Markdown.
    await page.focus('#tab-rendered');
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.getAttribute('#tab-md', 'aria-selected'), 'true');
    assert.equal(await page.getAttribute('#tab-rendered', 'aria-selected'), 'false');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-md');
    assert.equal(await page.locator('#view iframe').count(), 0);
    const md = await page.locator('#view pre').textContent();
    assert.match(md, /Introduction/);
    assert.match(md, /^1\. /m, 'raw Markdown (an ordered list item), not HTML');
    assert.doesNotMatch(md, /<(p|ol|li)>/);
    assert.equal(md, await serverMarkdown(SAMPLE));
    await page.screenshot({path: path.join(artifacts, 'page-markdown.png'), fullPage: true});

    // On through HTML and JSON, and round to Rendered again; ArrowLeft goes back.
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-html');
    assert.match(await page.locator('#view pre').textContent(), /<[a-z][^>]*>[\s\S]*Introduction/);
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-json');
    const json = JSON.parse(await page.locator('#view pre').textContent());
    assert.equal(json.pages.length, 1);
    assert.equal(json.pages[0].page, 1);
    await page.keyboard.press('ArrowRight');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-rendered');
    await page.keyboard.press('ArrowLeft');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-json');
    assert.deepEqual(pageErrors, []);
});

step('a page with a table shows a <table> in the rendered view', async () => {
    await submit(TABLE);
    await waitForResult();
    assert.equal(await page.getAttribute('#tab-rendered', 'aria-selected'), 'true', 'a new result opens on the rendered view');
    const frame = await renderedFrame();
    assert.ok(frame.tables >= 1, `no <table> in the rendered document:\n${frame.text}`);
    for (const cell of ['Variety', 'Upland', '1700']) assert.ok(frame.cells.includes(cell), `cell ${cell} missing: ${frame.cells}`);
    await page.screenshot({path: path.join(artifacts, 'table.png'), fullPage: true});
    assert.deepEqual(pageErrors, []);
});

step('the box "Join tables split by a page break", ticked from the keyboard, sends cross_page_tables=1', async () => {
    await page.focus('#crosspage');
    await page.keyboard.press('Space');
    assert.equal(await page.isChecked('#crosspage'), true);
    // The form the page posts (Chromium does not show a file upload's body to the test): fetch wrapped.
    await page.evaluate(() => {
        const fetch0 = window.fetch;
        window.fetch = (url, init) => {
            if (init && init.body instanceof FormData) window.sentCrossPage = init.body.get('cross_page_tables');
            window.fetch = fetch0;
            return fetch0(url, init);
        };
    });
    await submit(TABLE);
    await waitForResult();
    assert.equal(await page.evaluate(() => window.sentCrossPage), '1');
    assert.equal(await text('#error'), '');
    assert.ok((await renderedFrame()).tables >= 1, 'the one-page document keeps its table');
    await page.focus('#crosspage');
    await page.keyboard.press('Space');
    assert.equal(await page.isChecked('#crosspage'), false);
    assert.deepEqual(pageErrors, []);
});

step('a GIF upload shows an error that names GIF', async () => {
    await submit(GIF);
    await page.waitForFunction(() => document.getElementById('error').textContent !== '' && !document.getElementById('go').disabled);
    assert.match(await text('#error'), /GIF/);
    assert.equal(await page.locator('#result').isHidden(), true);
    assert.equal(await page.locator('#pages li').count(), 0);
    assert.equal(await text('#status'), '');
    assert.deepEqual(pageErrors, []);
});
