"""A tiny HTML renderer: everything is escaped unless it is already ``Html``."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlencode


class Html(str):
    """Markup that is safe to insert as is (built by this module); adding text escapes it."""

    def __add__(self, other: str) -> Html:
        return Html(str.__add__(self, esc(other)))

    def __radd__(self, other: str) -> Html:
        return Html(str.__add__(esc(other), self))


def esc(value: object) -> Html:
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def tag(element: str, body: object = "", /, **attrs: object) -> Html:
    parts = [element]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        attr = key.rstrip("_").replace("_", "-")
        parts.append(attr if value is True else f'{attr}="{esc(value)}"')
    return Html(f"<{' '.join(parts)}>{esc(body)}</{element}>")


def join(items: Iterable[object], sep: str = "") -> Html:
    return Html(sep.join(esc(i) for i in items))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[int] = (),
          empty: str = "Nothing to show.") -> Html:
    head = join(tag("th", h, class_="num" if i in numeric else None) for i, h in enumerate(headers))
    body = [join(tag("td", c, class_="num" if i in numeric else None) for i, c in enumerate(r)) for r in rows]
    if not body:
        return tag("p", empty, class_="empty")
    return tag("div", tag("table", Html(f"<thead><tr>{head}</tr></thead><tbody>")
                          + join(Html(f"<tr>{r}</tr>") for r in body) + Html("</tbody>")), class_="scroll")


def link(href: str, text: object, **attrs: object) -> Html:
    return tag("a", text, href=href, **attrs)


def url(path: str, params: Mapping[str, object]) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return path + ("?" + urlencode(kept) if kept else "")


def pager(path: str, params: Mapping[str, object], offset: int, limit: int, total: int | None,
          shown: int) -> Html:
    """Previous/next links; ``total`` None when unknown (streamed data): next shown while a page is full."""
    links: list[Html] = []
    if offset > 0:
        links.append(link(url(path, {**params, "offset": max(offset - limit, 0)}), "← Previous"))
    more = offset + shown < total if total is not None else shown >= limit
    if more:
        links.append(link(url(path, {**params, "offset": offset + limit}), "Next →", rel="next"))
    end = offset + shown
    summary = f"{offset + 1 if shown else 0}-{end}" + (f" of {total}" if total is not None else "")
    return tag("nav", join([tag("span", summary), *links], " "), class_="pager")


def hidden(name: str, value: object) -> Html:
    return Html(f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">')


def field(label: str, name: str, value: object = "", kind: str = "text", **attrs: object) -> Html:
    control = Html(f'<input type="{esc(kind)}" name="{esc(name)}" value="{esc(value)}"'
                   + "".join(f' {esc(k.rstrip("_"))}="{esc(v)}"' for k, v in attrs.items() if v is not None)
                   + ">")
    return tag("label", Html(f"{esc(label)} ") + control)


def select(label: str, name: str, options: Sequence[tuple[str, str]], current: str | None) -> Html:
    opts = join(tag("option", text, value=value, selected=value == (current or "")) for value, text in options)
    return tag("label", Html(f"{esc(label)} ") + tag("select", opts, name=name))


def form(action: str, body: Html, csrf: str | None, method: str = "post", button: str = "Save",
         **attrs: object) -> Html:
    token = hidden("csrf", csrf) if csrf is not None and method == "post" else Html("")
    return tag("form", token + body + tag("button", button, type="submit"), action=action, method=method, **attrs)


NAV = (("/console/", "Overview"), ("/console/keys", "Keys & budgets"), ("/console/usage", "Usage"),
       ("/console/audit", "Audit log"), ("/console/compliance", "Compliance"),
       ("/console/policies", "Policies"), ("/console/skills", "Skills"),
       ("/console/aiact", "AI Act"))


def page(title: str, body: Html, current: str, csrf: str | None, notice: str | None = None) -> Html:
    nav = join(link(href, text, class_="current" if href == current else None) for href, text in NAV)
    logout = form("/console/logout", Html(""), csrf, button="Log out", class_="logout") if csrf else Html("")
    flash = tag("p", notice, class_="notice", role="status") if notice else Html("")
    return Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)} · Passerelle console</title>"
        "<link rel=\"stylesheet\" href=\"/console/static/console.css\">"
        "<script src=\"/console/static/console.js\" defer></script></head><body>"
        f"<header><strong>Passerelle</strong><nav>{nav if csrf else ''}</nav>{logout}</header>"
        f"<main><h1>{esc(title)}</h1>{flash}{body}</main></body></html>")
