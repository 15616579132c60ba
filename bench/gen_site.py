#!/usr/bin/env python3
"""Writes the benchmark site: N pages of about 10 KB each (a title, a dozen items with a
.price, twenty links), as DIR/p/<i>.html for i in 1..N; and 200 pages that need a browser
(workload R), DIR/r/<i>.html: no title and no .price in the HTML, a script fetches
DIR/r/<i>.json and writes both. Deterministic: the same N gives the same bytes, so runs on
different days scrape the same work.

    bench/gen_site.py DIR [N]      (N defaults to 20000)
"""
import os
import random
import sys

WORDS = ("amber basil cedar delta ember fjord garnet harbor indigo juniper kestrel linen "
         "marble nickel orchid pepper quartz russet saffron timber umber velvet willow "
         "xenon yarrow zephyr").split()


def page(i, n, rnd):
    def words(k):
        return " ".join(rnd.choice(WORDS) for _ in range(k))

    items = []
    for j in range(12):
        items.append(
            f'<li class="item" id="i{j}"><h2><a href="/p/{rnd.randint(1, n)}.html">{words(3)}</a>'
            f'</h2><p class="desc">{words(90)}</p>'
            f'<span class="price">{rnd.randint(1, 999)}.{rnd.randint(0, 99):02d}</span></li>')
    links = "".join(f'<li><a href="/p/{rnd.randint(1, n)}.html">{words(2)}</a></li>'
                    for _ in range(20 - 12))
    return (f'<!doctype html>\n<html><head><meta charset="utf-8"><title>Page {i}: {words(4)}'
            f'</title></head>\n<body><header><h1>Page {i}</h1></header>\n'
            f'<ul class="items">{"".join(items)}</ul>\n<nav><ul>{links}</ul></nav>\n'
            f'<footer>{words(20)}</footer></body></html>\n')


RENDERED = 200


def rendered(root):
    """Workload R's pages: what an HTTP fetch sees is an empty shell."""
    os.makedirs(os.path.join(root, "r"), exist_ok=True)
    rnd = random.Random(7)
    for i in range(1, RENDERED + 1):
        with open(os.path.join(root, "r", f"{i}.json"), "w") as f:
            f.write(f'{{"title": "Rendered {i}: {rnd.choice(WORDS)} {rnd.choice(WORDS)}", '
                    f'"price": "{rnd.randint(1, 999)}.{rnd.randint(0, 99):02d}"}}\n')
        with open(os.path.join(root, "r", f"{i}.html"), "w") as f:
            f.write(f"""<!doctype html>
<html><head><meta charset="utf-8"></head>
<body><h1>Loading</h1><div id="app"></div>
<script>
fetch('/r/{i}.json').then((r) => r.json()).then((d) => {{
  document.title = d.title;
  const s = document.createElement('span');
  s.className = 'price';
  s.textContent = d.price;
  document.getElementById('app').appendChild(s);
}});
</script></body></html>
""")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    os.makedirs(os.path.join(root, "p"), exist_ok=True)
    if not os.path.exists(os.path.join(root, "r", f"{RENDERED}.html")):
        rendered(root)
    stamp = os.path.join(root, ".pages")
    if os.path.exists(stamp) and open(stamp).read() == str(n):
        return  # already there
    rnd = random.Random(42)
    for i in range(1, n + 1):
        with open(os.path.join(root, "p", f"{i}.html"), "w") as f:
            f.write(page(i, n, rnd))
    with open(stamp, "w") as f:
        f.write(str(n))


if __name__ == "__main__":
    main()
