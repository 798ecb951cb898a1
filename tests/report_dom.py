"""The elements of an HTML page (the report as written, or as a browser's --dump-dom serialised it),
flat and in document order, with their attributes and their own text; standard library only."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"meta", "link", "br", "img", "input", "hr", "source", "wbr", "col", "area", "base", "embed"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parents: tuple[Node, ...]
    text: str = ""
    children: list[Node] = field(default_factory=list)

    def within(self, tag: str, **attrs: str) -> bool:
        """Whether an ancestor is ``tag`` with these attributes (data_x means data-x)."""
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        return any(
            parent.tag == tag and all(parent.attrs.get(k) == v for k, v in wanted.items())
            for parent in self.parents
        )


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.nodes: list[Node] = []
        self.open: list[Node] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {name: value or "" for name, value in attrs}, tuple(self.open))
        if self.open:
            self.open[-1].children.append(node)
        self.nodes.append(node)
        if tag not in VOID:
            self.open.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.open.pop()

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index].tag == tag:
                del self.open[index:]
                return

    def handle_data(self, data: str) -> None:
        if self.open:
            self.open[-1].text += data


def parse(page: str) -> list[Node]:
    collector = _Collector()
    collector.feed(page)
    collector.close()
    return collector.nodes


def series(nodes: list[Node], tag: str, name: str, **within: str) -> list[Node]:
    """The ``tag`` elements with data-series ``name`` (inside an svg with these attributes, if given)."""
    return [
        node
        for node in nodes
        if node.tag == tag
        and node.attrs.get("data-series") == name
        and (not within or node.within("svg", **within))
    ]


def points(polyline: Node) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (pair.split(",") for pair in polyline.attrs["points"].split())]
