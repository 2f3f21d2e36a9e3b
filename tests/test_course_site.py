"""The course site (docs/build_site.py, ``make site``): it builds, every link resolves, every figure renders.

The site is built into a temporary directory; a static pass checks every ``href`` and ``src`` of every
page; then headless Chromium (Debian's ``chromium``) opens the main pages, all at once in the frames of
one check page, and reports each page's images that did not decode; a screenshot of the navigation
page is saved beside the site (its path is printed).
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import missing_feature

pytestmark = pytest.mark.ch00

REPO = Path(__file__).resolve().parent.parent


def _need(what: str, ok: bool) -> None:
    if not ok:
        missing_feature(f"{what} is not installed (make apt / requirements.txt)")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    _need("nbconvert", importlib.util.find_spec("nbconvert") is not None)
    spec = importlib.util.spec_from_file_location("build_site", REPO / "docs" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("course") / "site"
    module.build(out)
    return out


def _links(page: Path) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'(?:href|src)="([^"]*)"', page.read_text())]


def test_the_site_has_a_page_per_notebook_and_the_reference_pages(site: Path):
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    pages = {p.stem for p in site.glob("*.html")}
    assert set(notebooks) | {"index", "commands", "glossary", "teaching"} <= pages
    index = (site / "index.html").read_text()
    for name in notebooks + ["commands", "glossary", "teaching"]:
        assert f'href="{name}.html"' in index, f"index.html does not link {name}.html"
    assert 'src="map.png"' in index and (site / "map.png").stat().st_size > 20_000


def test_every_link_of_the_site_resolves_inside_it(site: Path):
    broken = []
    for page in sorted(site.rglob("*.html")):
        for target in _links(page):
            if re.match(r"(https?|mailto|data|javascript):", target) or target.startswith("#") or not target:
                continue
            path = target.split("#")[0].split("?")[0]
            if not (page.parent / path).exists():
                broken.append(f"{page.relative_to(site)} -> {target}")
    assert broken == [], "links that do not resolve:\n" + "\n".join(broken)


def test_the_site_loads_nothing_from_the_network(site: Path):
    loads = re.compile(r'<(?:script|img|link)[^>]*(?:src|href)="(https?://[^"]*)"')
    external = [f"{page.name}: {t}" for page in site.glob("*.html") for t in loads.findall(page.read_text())]
    assert external == []


def test_every_figure_renders_in_headless_chromium(site: Path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    _need("chromium", chromium is not None)
    pages = sorted(p.name for p in site.glob("*.html"))
    check = site / "check.html"
    check.write_text("""<!DOCTYPE html><html><body><script>
const pages = %s, results = {};
let pending = pages.length;
for (const page of pages) {
  const frame = document.createElement("iframe");
  frame.width = 1200; frame.height = 900;
  frame.onload = () => {
    const images = [...frame.contentDocument.images];
    const broken = images.filter(i => !(i.complete && i.naturalWidth > 0));
    results[page] = {images: images.length, title: frame.contentDocument.title,
                     broken: broken.map(i => i.getAttribute("src").slice(0, 60))};
    if (--pending === 0) {
      const out = document.createElement("pre"); out.id = "result"; out.textContent = JSON.stringify(results);
      document.body.appendChild(out);
    }
  };
  frame.src = page;
  document.body.appendChild(frame);
}
</script></body></html>""" % json.dumps(pages))
    args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
            f"--user-data-dir={site.parent / 'chromium-profile'}"]
    dom = subprocess.run([*args, "--virtual-time-budget=30000", "--dump-dom", check.as_uri()],
                         capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="result">(.*?)</pre>', dom.stdout, re.S)
    assert found, f"the check page did not finish:\n{dom.stdout[-2000:]}\n{dom.stderr[-2000:]}"
    results = json.loads(html.unescape(found.group(1)))
    assert sorted(results) == pages
    broken = {page: r["broken"] for page, r in results.items() if r["broken"]}
    assert broken == {}, f"images that did not render: {broken}"
    for page in pages:
        if page[:2].isdigit():  # a notebook page: at least the map of Docker
            assert results[page]["images"] >= 1, f"{page} shows no figure"
    assert results["index.html"]["images"] == 1
    shot = site.parent / "index.png"
    subprocess.run([*args, "--window-size=1280,1800", f"--screenshot={shot}", (site / "index.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 50_000, "no screenshot of the navigation page"
    print(f"screenshot of the course site: {shot}")
