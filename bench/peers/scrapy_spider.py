"""The Scrapy peer: a spider over a URL list with a SQLite item pipeline, title and first
.price by XPath. Run with Debian's scrapy:

    /usr/bin/python3 -m scrapy runspider scrapy_spider.py -a urls=URLS_FILE -a db=DB \
        -s CONCURRENT_REQUESTS=N -s CONCURRENT_REQUESTS_PER_DOMAIN=N [-a slot=netloc]

-a slot=netloc: each request's download slot (where Scrapy keeps DOWNLOAD_DELAY and
CONCURRENT_REQUESTS_PER_DOMAIN) is its host:port; Scrapy 2.8's own key is the hostname, so
every port of 127.0.0.1 would share one slot.
"""
import sqlite3
import time
from urllib.parse import urlsplit

import scrapy


class SqlitePipeline:
    def open_spider(self, spider):
        self.db = sqlite3.connect(spider.db)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS results (url TEXT, status INTEGER, "
                        "title TEXT, price TEXT, fetched_at REAL, error TEXT)")
        self.rows = []

    def process_item(self, item, spider):
        self.rows.append((item["url"], item["status"], item["title"], item["price"],
                          time.time(), item.get("error")))
        if len(self.rows) >= 500:
            self.flush()
        return item

    def flush(self):
        self.db.executemany("INSERT INTO results VALUES (?, ?, ?, ?, ?, ?)", self.rows)
        self.db.commit()
        self.rows.clear()

    def close_spider(self, spider):
        self.flush()
        self.db.close()


class BenchSpider(scrapy.Spider):
    name = "bench"
    custom_settings = {
        "ROBOTSTXT_OBEY": False,
        "DOWNLOAD_DELAY": 0,
        "COOKIES_ENABLED": False,
        "RETRY_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "WARNING",
        "DOWNLOAD_TIMEOUT": 60,
        "REACTOR_THREADPOOL_MAXSIZE": 20,
        "ITEM_PIPELINES": {__name__ + ".SqlitePipeline": 100},
    }

    def start_requests(self):
        with open(self.urls) as f:
            for line in f:
                url = line.strip()
                if url:
                    meta = ({"download_slot": urlsplit(url).netloc}
                            if getattr(self, "slot", "") == "netloc" else {})
                    yield scrapy.Request(url, callback=self.parse, errback=self.failed,
                                         dont_filter=True, meta=meta)

    def parse(self, response):
        yield {"url": response.url, "status": response.status,
               "title": response.xpath("//title/text()").get(),
               "price": response.xpath("(//span[@class='price'])[1]/text()").get()}

    def failed(self, failure):
        yield {"url": failure.request.url, "status": 0, "title": None, "price": None,
               "error": repr(failure.value)}
