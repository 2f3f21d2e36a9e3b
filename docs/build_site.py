"""Build the course site: every notebook as an HTML page, a navigation page, the map, the command map,
the glossary and the teacher's guide. ``make site`` runs it; tests/test_course_site.py builds it and
opens it in headless Chromium.

    python docs/build_site.py [OUT]          # default: site/ at the top of the repository

Pages are static files that work from ``file://``: the notebooks' outputs (figures included) are
embedded by nbconvert, the map is a PNG drawn by ``minidocker.coursemap``, markdown pages are
rendered with mistune (a dependency of nbconvert). A link from a notebook or a doc to a file of
the repository (``../minidocker/doctor.py``) becomes a page of the site showing that file, so that
every link of the site resolves inside it. See: https://nbconvert.readthedocs.io/.
"""

from __future__ import annotations

import html
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
DOCS = REPO / "docs"
PAGES = (("commands.md", "Command map"), ("glossary.md", "Glossary"), ("teaching.md", "Teacher's guide"))
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
nav.course { background: #2a6db0; padding: 0.5em 1em; position: sticky; top: 0; z-index: 10; }
nav.course a { color: white; margin-right: 1em; text-decoration: none; font-size: 0.95em; }
nav.course a.here { font-weight: bold; text-decoration: underline; }
main.course { max-width: 62em; margin: 1.5em auto; padding: 0 1em; line-height: 1.5; }
main.course table { border-collapse: collapse; margin: 1em 0; }
main.course td, main.course th { border: 1px solid #ccc; padding: 0.3em 0.6em; vertical-align: top; }
main.course pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; }
main.course img.map { max-width: 100%; border: 1px solid #ddd; }
"""


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else REPO / "site"
    build(out)
    print(f"site built in {out}: open {out / 'index.html'}")
    return 0


def build(out: Path) -> list[Path]:
    """Write the whole site into ``out`` (emptied first); return the pages written."""
    import matplotlib

    matplotlib.use("Agg")
    from minidocker.coursemap import map_figure

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    site = Site(out, notebooks)
    figure = map_figure("00")
    figure.savefig(out / "map.png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(figure)
    for path in notebooks:
        site.notebook_page(path)
    for name, title in PAGES:
        site.markdown_page(DOCS / name, title)
    site.index_page()
    site.write_source_pages()
    return site.written


class Site:
    """The pages of the site, their navigation bar, and the repository files they link to."""

    def __init__(self, out: Path, notebooks: list[Path]) -> None:
        self.out, self.notebooks, self.written = out, notebooks, []
        self.sources: set[Path] = set()  # repository files and folders linked from a page

    # --- navigation and links -------------------------------------------------------------

    def nav(self, here: str) -> str:
        links = [("index.html", "Course"), ("commands.html", "Commands"), ("glossary.html", "Glossary"),
                 ("teaching.html", "Teaching")]
        links += [(p.stem + ".html", p.name[:2]) for p in self.notebooks]
        return '<nav class="course">' + "".join(
            f'<a href="{href}"{" class=here" if href == here else ""}>{html.escape(text)}</a>'
            for href, text in links) + "</nav>"

    def rewrite_links(self, text: str, base: Path) -> str:
        """Relative href/src of a page made from a file in ``base``: notebooks become their pages,
        other repository files become source pages; absolute URLs and anchors stay."""
        def fix(match: re.Match) -> str:
            attr, target = match.group(1), html.unescape(match.group(2))
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")):
                return match.group(0)
            path, _, anchor = target.partition("#")
            resolved = (base / path).resolve()
            if resolved.suffix == ".ipynb" and resolved.parent == NOTEBOOKS:
                new = resolved.stem + ".html"
            elif resolved.suffix == ".md" and resolved.parent == DOCS:
                new = resolved.stem + ".html"
            elif resolved.is_relative_to(REPO) and resolved.exists():
                self.sources.add(resolved)
                new = self.source_href(resolved)
            else:
                return match.group(0)  # left as it is: the site test reports it
            return f'{attr}="{html.escape(new + ("#" + anchor if anchor else ""))}"'

        return re.sub(r'(href|src)="([^"]*)"', fix, text)

    @staticmethod
    def source_href(path: Path) -> str:
        relative = path.relative_to(REPO).as_posix()
        return f"repo/{relative}/index.html" if path.is_dir() else f"repo/{relative}.html"

    def page(self, name: str, title: str, body: str) -> None:
        depth = name.count("/")
        prefix = "../" * depth
        nav = re.sub(r'href="', f'href="{prefix}', self.nav(name)) if depth else self.nav(name)
        document = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                    f"<style>{STYLE}</style></head><body>{nav}<main class='course'>{body}</main>"
                    "</body></html>")
        target = self.out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(document)
        self.written.append(target)

    # --- the pages ------------------------------------------------------------------------

    def notebook_page(self, path: Path) -> None:
        from nbconvert import HTMLExporter

        exporter = HTMLExporter(template_name="lab")
        body, _ = exporter.from_filename(str(path))
        # The site works offline: no require.js or MathJax from a CDN (the notebooks use neither).
        body = re.sub(r'<script[^>]*src="https?://[^"]*"[^>]*>\s*</script>', "", body)
        body = self.rewrite_links(body, NOTEBOOKS)
        nav = f"<style>{STYLE}</style>" + self.nav(path.stem + ".html")
        body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + nav, body, count=1)
        target = self.out / (path.stem + ".html")
        target.write_text(body)
        self.written.append(target)

    def markdown_page(self, path: Path, title: str) -> None:
        import mistune

        rendered = mistune.html(path.read_text())
        self.page(path.stem + ".html", title, self.rewrite_links(rendered, path.parent))

    def index_page(self) -> None:
        import nbformat

        from minidocker.coursemap import CHAPTERS

        rows = []
        for number, title in CHAPTERS.items():
            path = next((p for p in self.notebooks if p.name.startswith(number + "-")), None)
            if path is None:
                rows.append(f"<tr><td>{number}</td><td>{html.escape(title)}</td><td>in preparation</td></tr>")
                continue
            nb = nbformat.read(path, as_version=4)
            text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
            budget = re.search(r"## Time budget\s+(.+?)(?:\n\n|$)", text, re.S)
            heading = nb.cells[0].source.splitlines()[0].lstrip("# ")
            rows.append(f'<tr><td>{number}</td><td><a href="{path.stem}.html">{html.escape(heading)}</a></td>'
                        f"<td>{html.escape(budget.group(1).strip() if budget else '')}</td></tr>")
        body = f"""<h1>minidocker: build your own Docker</h1>
<p>A course in Jupyter notebooks: one kernel mechanism per chapter, and a real container runtime in
Python that the chapters build. Chapters 00-09 take about 15 hours with their exercises
(<a href="teaching.html">the teacher's guide</a> has 3-hour, 1-day and 3-day tracks).</p>
<h2>The map of Docker</h2>
<p>Every part of Docker, and the chapter that rebuilds it. Each chapter opens with this map, its own part
highlighted.</p>
<img class="map" src="map.png" alt="the map of Docker's parts and the chapters of the course">
<h2>Chapters</h2>
<table><tr><th>ch</th><th>notebook</th><th>time</th></tr>{''.join(rows)}</table>
<h2>Reference</h2>
<ul><li><a href="commands.html">Command map</a>: docker command, minidocker command, chapter</li>
<li><a href="glossary.html">Glossary</a></li>
<li><a href="teaching.html">Teacher's guide</a></li>
<li><a href="{self.source_href(REPO / 'exercises' / 'README.md')}">Exercises</a></li></ul>"""
        self.sources.add(REPO / "exercises" / "README.md")
        self.page("index.html", "minidocker: the course", body)

    def write_source_pages(self) -> None:
        """A page per linked repository file (its text) or folder (its entries); files listed in a folder
        page get pages too, sub-folders are named without a link."""
        done: set[Path] = set()
        while self.sources - done:
            path = sorted(self.sources - done)[0]
            done.add(path)
            name = self.source_href(path)
            relative = path.relative_to(REPO).as_posix()
            up = "../" * name.count("/")
            if path.is_dir():
                items = []
                for entry in sorted(path.iterdir()):
                    if entry.name.startswith(".") or entry.name == "__pycache__":
                        continue
                    if entry.is_file():
                        self.sources.add(entry)
                        href = up + self.source_href(entry)
                        items.append(f'<li><a href="{href}">{html.escape(entry.name)}</a></li>')
                    else:
                        items.append(f"<li>{html.escape(entry.name)}/</li>")
                body = f"<h1>{html.escape(relative)}/</h1><ul>{''.join(items)}</ul>"
            elif path.suffix == ".md":
                import mistune

                rendered = mistune.html(path.read_text())
                # links inside it: to other repository files, relative to this page's place
                rendered = re.sub(r'(href|src)="(?![a-z][a-z0-9+.-]*:|#|/)([^"]*)"',
                                  lambda m: self._source_link(m, path.parent, up), rendered)
                body = f"<p><code>{html.escape(relative)}</code></p>{rendered}"
            else:
                try:
                    text = path.read_text()
                except UnicodeDecodeError:
                    text = f"({path.stat().st_size} bytes of binary data)"
                body = f"<h1>{html.escape(relative)}</h1><pre>{html.escape(text)}</pre>"
            self.page(name, relative, body)

    def _source_link(self, match: re.Match, base: Path, up: str) -> str:
        path, _, anchor = html.unescape(match.group(2)).partition("#")
        resolved = (base / path).resolve()
        if resolved.suffix == ".ipynb" and resolved.parent == NOTEBOOKS:
            new = up + resolved.stem + ".html"
        elif resolved.is_relative_to(REPO) and resolved.exists():
            self.sources.add(resolved)
            new = up + self.source_href(resolved)
        else:
            return match.group(0)
        return f'{match.group(1)}="{html.escape(new + ("#" + anchor if anchor else ""))}"'


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main(sys.argv))
