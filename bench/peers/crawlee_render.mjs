// The Crawlee browser peer (bench/run R): Crawlee 3's PuppeteerCrawler driving Debian's
// Chromium through puppeteer-core, CONCURRENCY pages at once (4 in R), each page's title and
// first span with class "price" read once a script has written the .price, one SQLite row
// per page with better-sqlite3 (WAL, one transaction per 500 rows), as crawlee_scrape.mjs.
//
//     node crawlee_render.mjs URLS_FILE CONCURRENCY DB
//
// Set as for CheerioCrawler (min/max/desired concurrency all CONCURRENCY, no retries, sessions
// off, storage in memory), and fingerprints off (browserPoolOptions.useFingerprints: false):
// scraperd does not disguise its browser either.
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { Configuration, PuppeteerCrawler, log } from 'crawlee';
import puppeteer from 'puppeteer-core';

const [urlsFile, concurrencyArg, dbPath] = process.argv.slice(2);
if (!dbPath) {
    console.error('usage: crawlee_render.mjs URLS_FILE CONCURRENCY DB');
    process.exit(2);
}
const concurrency = Number(concurrencyArg);
const urls = fs.readFileSync(urlsFile, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean);

log.setLevel(log.LEVELS.WARNING);

const db = new Database(dbPath);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE IF NOT EXISTS results (url TEXT, status INTEGER, title TEXT, price TEXT, '
    + 'fetched_at REAL, error TEXT)');
const insert = db.prepare('INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)');
const insertMany = db.transaction((rows) => {
    for (const r of rows) insert.run(r);
});
let rows = [];
function add(row) {
    rows.push(row);
    if (rows.length >= 500) flush();
}
function flush() {
    insertMany(rows);
    rows = [];
}

const crawler = new PuppeteerCrawler({
    minConcurrency: concurrency,
    maxConcurrency: concurrency,
    autoscaledPoolOptions: { desiredConcurrency: concurrency },
    maxRequestRetries: 0,
    useSessionPool: false,
    persistCookiesPerSession: false,
    navigationTimeoutSecs: 60,
    browserPoolOptions: { useFingerprints: false },
    launchContext: {
        launcher: puppeteer,
        launchOptions: {
            executablePath: '/usr/bin/chromium',
            headless: true,
            args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                '--disable-background-networking', '--disable-component-update', '--disable-sync',
                '--disable-quic', '--no-first-run'],
        },
    },
    async requestHandler({ request, response, page }) {
        await page.waitForSelector('span[class="price"]', { timeout: 30000 });
        const [title, price] = await page.evaluate(() => [
            document.querySelector('title')?.textContent || null,
            document.querySelector('span[class="price"]')?.textContent || null,
        ]);
        add([request.url, response ? response.status() : 0, title, price, Date.now() / 1000, null]);
    },
    async failedRequestHandler({ request }, error) {
        add([request.url, 0, null, null, Date.now() / 1000, String(error)]);
    },
}, new Configuration({ persistStorage: false }));

await crawler.run(urls);
flush();
db.close();
