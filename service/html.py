"""Plain HTML views of the OGC API documents (the ``html`` conformance class).

A person following links in a browser sees the same resources as a client
reading JSON: one small template renders a title, the links, and tables.
No scripts, no assets: the interactive map is ``/map``.
"""

from __future__ import annotations

from typing import Any

from flask import render_template_string

_TEMPLATE = """<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>{{ title }}{% if title != "gridgeo" %} · gridgeo{% endif %}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,sans-serif;margin:1.5em;max-width:75em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}
nav a{margin-right:1em}pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head>
<body><nav><a href="{{ root }}">gridgeo</a><a href="{{ root }}collections?f=html">collections</a>
<a href="{{ root }}api?f=html">API</a><a href="{{ root }}conformance?f=html">conformance</a></nav>
<h1>{{ title }}</h1>{% if description %}<p>{{ description }}</p>{% endif %}
{% if links %}<h2>Links</h2><ul>{% for l in links %}
<li><a href="{{ l.href }}">{{ l.title or l.rel }}</a> ({{ l.rel }}, {{ l.type }})</li>{% endfor %}</ul>{% endif %}
{% for t in tables %}<h2>{{ t.caption }}</h2><table><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for c in row %}<td>{% if c is mapping %}<a href="{{ c.href }}">{{ c.text }}</a>
{% else %}{{ c if c is not none else "" }}{% endif %}</td>{% endfor %}</tr>{% endfor %}</table>{% endfor %}
{% if pre %}<pre>{{ pre }}</pre>{% endif %}
</body></html>"""


def page(
    title: str,
    root: str,
    *,
    description: str | None = None,
    links: list[dict[str, Any]] | None = None,
    tables: list[dict[str, Any]] | None = None,
    pre: str | None = None,
) -> str:
    """Render a page; Flask autoescapes every value, so feature names cannot inject markup.

    ``tables`` are ``{"caption", "header", "rows"}``; a cell is text or ``{"text", "href"}``.
    """
    return render_template_string(_TEMPLATE, title=title, root=root, description=description,
                                  links=_one_per_target(links or []), tables=tables or [], pre=pre)


def _one_per_target(links: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per target: OGC API asks for some links twice, under a short and a URI relation
    (``conformance`` and ``http://www.opengis.net/def/rel/ogc/1.0/conformance``), which a JSON client
    needs and a person reading the page does not; the line names both relations."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for lk in links:
        key = (str(lk.get("href")), str(lk.get("type")))
        if key in out:
            out[key] = {**out[key], "rel": f"{out[key]['rel']}, {lk.get('rel')}"}
        else:
            out[key] = lk
    return list(out.values())
