// The Crawlee peer: what a Node.js developer would write for the same job. Crawlee 3's
// CheerioCrawler (plain HTTP, no browser) fetches with CONCURRENCY requests in flight, cheerio
// extracts the title and the first span with class "price" (the same values as the other peers'
// XPath), better-sqlite3 stores one row per page (WAL, one transaction per 500 rows).
//
//     node crawlee_scrape.mjs URLS_FILE CONCURRENCY DB [--defaults]
//                             [--same-domain-delay SECONDS] [--per-host-rate N]
//
// What is set and why (docs/performance.md, W1):
//   - concurrency fixed: minConcurrency, maxConcurrency and autoscaledPoolOptions.
//     desiredConcurrency all CONCURRENCY (in 3.18 minConcurrency alone does not raise the
//     pool's start: it stays at 10-17 in flight and grows by 5 % every 10 s);
//   - no retries (maxRequestRetries 0), sessions off (useSessionPool: false), as the others;
//   - storage in memory (Configuration persistStorage: false); --defaults keeps Crawlee's
//     default storage: the request queue as JSON files under CRAWLEE_STORAGE_DIR (./storage).
// Politeness (W3):
//   --same-domain-delay S  Crawlee's own per-domain setting, sameDomainDelaySecs: keyed on the
//                          registrable domain (tldts getDomain: ports ignored, and no delay at
//                          all for an IP address, whose domain is null)
//   --per-host-rate N      what a user has to write for a per-origin rate: a pre-navigation
//                          hook that holds each request until its host:port's next turn
//                          (N requests a second, burst 1). A held request keeps its task slot.
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { CheerioCrawler, Configuration, log } from 'crawlee';

const args = process.argv.slice(2);
const flags = { defaults: false, sameDomainDelay: 0, perHostRate: 0 };
const positional = [];
for (let i = 0; i < args.length; i++) {
    if (args[i] === '--defaults') flags.defaults = true;
    else if (args[i] === '--same-domain-delay') flags.sameDomainDelay = Number(args[++i]);
    else if (args[i] === '--per-host-rate') flags.perHostRate = Number(args[++i]);
    else positional.push(args[i]);
}
if (positional.length !== 3) {
    console.error('usage: crawlee_scrape.mjs URLS_FILE CONCURRENCY DB [--defaults] '
        + '[--same-domain-delay SECONDS] [--per-host-rate N]');
    process.exit(2);
}
const [urlsFile, concurrencyArg, dbPath] = positional;
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

// --per-host-rate: each host:port's next free time; a request waits for its turn, then takes
// the next one (rate N/s, burst 1).
const nextTurn = new Map();
const interval = flags.perHostRate > 0 ? 1000 / flags.perHostRate : 0;
async function waitForHost({ request }) {
    const host = new URL(request.url).host;
    const now = Date.now();
    const at = Math.max(now, nextTurn.get(host) ?? 0);
    nextTurn.set(host, at + interval);
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
}

const crawler = new CheerioCrawler({
    minConcurrency: concurrency,
    maxConcurrency: concurrency,
    autoscaledPoolOptions: { desiredConcurrency: concurrency },
    maxRequestRetries: 0,
    useSessionPool: false,
    persistCookiesPerSession: false,
    navigationTimeoutSecs: 60,
    sameDomainDelaySecs: flags.sameDomainDelay,
    preNavigationHooks: interval ? [waitForHost] : [],
    async requestHandler({ request, response, $ }) {
        const title = $('title').first().text() || null;
        const price = $('span[class="price"]').first().text() || null;
        add([request.url, response.statusCode, title, price, Date.now() / 1000, null]);
    },
    async failedRequestHandler({ request }, error) {
        add([request.url, 0, null, null, Date.now() / 1000, String(error)]);
    },
}, flags.defaults ? undefined : new Configuration({ persistStorage: false }));

await crawler.run(urls);
flush();
db.close();
