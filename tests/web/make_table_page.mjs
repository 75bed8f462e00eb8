// Writes data/table_page.png, the page with a ruled table that browser.test.mjs uploads to see a
// <table> in the rendered view (examples/data/sample_page.png has none). Run it only to
// regenerate the committed fixture: `node make_table_page.mjs` (Chromium draws the page).
import {chromium} from 'playwright-core';
import {mkdirSync} from 'node:fs';
import path from 'node:path';
import {here} from './server.mjs';

const html = `<!doctype html><meta charset="utf-8"><style>
body { font: 19px/1.5 "DejaVu Serif", serif; margin: 90px 100px; color: #000; background: #fff; }
h2 { font-size: 26px; }
table { border-collapse: collapse; margin: 24px auto; }
td, th { padding: 4px 14px; text-align: left; }
thead th { border-top: 2px solid #000; border-bottom: 1px solid #000; }
tbody tr:last-child td { border-bottom: 2px solid #000; }
</style>
<h2>Results</h2>
<p>Table 1 lists the measured yields of the three cotton varieties over two seasons.</p>
<table><thead><tr><th>Variety</th><th>Season 1</th><th>Season 2</th><th>Mean</th></tr></thead><tbody>
<tr><td>Acala</td><td>1520</td><td>1610</td><td>1565</td></tr>
<tr><td>Pima</td><td>1240</td><td>1300</td><td>1270</td></tr>
<tr><td>Upland</td><td>1710</td><td>1690</td><td>1700</td></tr></tbody></table>
<p>The differences between seasons are small compared with those between varieties.</p>`;

const out = path.join(here, 'data', 'table_page.png');
mkdirSync(path.dirname(out), {recursive: true});
const browser = await chromium.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox']});
try {
    const page = await browser.newPage({viewport: {width: 1004, height: 640}});
    await page.setContent(html);
    await page.evaluate(() => document.fonts.ready);
    await page.screenshot({path: out});
} finally {
    await browser.close();
}
console.log(`wrote ${out}`);
