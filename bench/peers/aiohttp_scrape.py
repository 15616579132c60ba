#!/usr/bin/python3
"""The asyncio peer: what a Python developer would write for the same job. aiohttp fetches
with up to CONCURRENCY requests in flight (one connection pool, keep-alive), lxml extracts
the title and the first .price with XPath, sqlite3 stores one row per page (batched, one
commit per 500 rows, WAL, as scraperd does).

    aiohttp_scrape.py URLS_FILE CONCURRENCY DB
"""
import asyncio
import sqlite3
import sys
import time

import aiohttp
import lxml.html


async def main(urls, concurrency, db_path):
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS results (url TEXT, status INTEGER, title TEXT, "
               "price TEXT, fetched_at REAL, error TEXT)")
    queue = asyncio.Queue()
    for u in urls:
        queue.put_nowait(u)
    rows = []

    def flush():
        db.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.commit()
        rows.clear()

    async def worker(session):
        while True:
            try:
                url = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                async with session.get(url) as r:
                    body = await r.read()
                    title = price = None
                    if body:
                        doc = lxml.html.fromstring(body)
                        t = doc.xpath("//title/text()")
                        p = doc.xpath("(//span[@class='price'])[1]/text()")
                        title = t[0] if t else None
                        price = p[0] if p else None
                    rows.append((url, r.status, title, price, time.time(), None))
            except Exception as e:  # every fetch ends as a row
                rows.append((url, 0, None, None, time.time(), repr(e)))
            if len(rows) >= 500:
                flush()

    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    flush()
    db.close()


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        urls = [line.strip() for line in f if line.strip()]
    asyncio.run(main(urls, int(sys.argv[2]), sys.argv[3]))
