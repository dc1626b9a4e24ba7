"""Turns the reStructuredText markup inside softjax's Google-style docstrings into Markdown.

The docstrings keep Sphinx's notation, which reads well in ``help()`` and in the source:
``:math:`...``` roles, ``.. math::`` blocks, ``::`` literal blocks and cross-reference roles such
as ``:func:`~softjax.softargmax```. mkdocstrings renders docstrings as Markdown, so when griffe
has loaded the package this extension rewrites each docstring (in memory only):

- ``:math:`x``` becomes ``\\(x\\)`` and a ``.. math::`` block becomes a ``$$`` block, both for
  ``pymdownx.arithmatex`` (MathJax renders them in the browser);
- ``text::`` followed by an indented block becomes ``text:`` and a fenced code block, and so does
  a doctest (``>>>`` lines and their output), which griffe reads as Markdown otherwise;
- a cross-reference role becomes a mkdocs-autorefs link when its target is rendered on the site
  (a public member of a documented module), and inline code otherwise (private helpers, other
  libraries).

It also gives the package docstring a "Functions" and a "Modules" section listing the names in
``softjax.__all__`` with the summary line of each, so that the page of the package is an index
linking to the modules where they are documented, rather than a second copy of their docs.
"""

from __future__ import annotations

import re
import textwrap

import griffe

# The modules that have a page in the API reference (besides the package itself).
DOCUMENTED_MODULES = ("smooth", "limits", "thermo", "random", "schedules", "semiring", "dp")

_MATH_ROLE = re.compile(r":math:`([^`]+)`")
_XREF_ROLE = re.compile(r":(?:py:)?(func|meth|class|mod|attr|data|obj|exc|const):`([^`]+)`")
_MATH_DIRECTIVE = re.compile(r"^(?P<indent> *)\.\. math::(?P<rest>.*)$")
_LITERAL_MARKER = re.compile(r"^(?P<indent> *)(?P<text>.*?)(?P<space> ?)::\s*$")


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _indented_block(lines: list[str], start: int, indent: int) -> tuple[list[str], int]:
    """The lines from ``start`` that are blank or indented deeper than ``indent``, without the
    trailing blank ones, and the index of the first line after them."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent_of(lines[end]) > indent):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end], end


def _blocks(text: str) -> str:
    """``.. math::`` blocks to ``$$`` blocks, ``::`` literal blocks and doctests to fenced code."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = _MATH_DIRECTIVE.match(line)
        if directive:
            pad = directive["indent"]
            body, i = _indented_block(lines, i + 1, len(pad))
            first = [directive["rest"].strip()] if directive["rest"].strip() else []
            formula = first + [b.strip() for b in body if b.strip()]
            if out and out[-1].strip():
                out.append("")
            out += [pad + "$$", *(pad + f for f in formula), pad + "$$"]
            if i < len(lines) and lines[i].strip():
                out.append("")
            continue
        if line.lstrip().startswith(">>>"):
            pad = " " * _indent_of(line)
            end = i
            while end < len(lines) and lines[end].strip() and _indent_of(lines[end]) >= len(pad):
                end += 1
            session = [row[len(pad) :] for row in lines[i:end]]
            out += [pad + "```pycon", *(pad + row for row in session), pad + "```"]
            i = end
            continue
        marker = _LITERAL_MARKER.match(line)
        if marker:
            pad = marker["indent"]
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and _indent_of(lines[j]) > len(pad):
                body, i = _indented_block(lines, j, len(pad))
                text_part = marker["text"]
                if text_part:
                    # "word::" reads "word:"; "word ::" (or "::" alone) drops the marker.
                    out.append(pad + text_part + ("" if marker["space"] else ":"))
                    out.append("")
                code = textwrap.dedent("\n".join(body)).split("\n")
                out += [pad + "```python", *(pad + c if c else "" for c in code), pad + "```"]
                continue
        # A wrapped line that starts with ">" (say ">= 0.") is text, not a Markdown quote.
        out.append(re.sub(r"^( *)>", r"\1\\>", line))
        i += 1
    return "\n".join(out)


def _math_roles(text: str) -> str:
    def inline(match: re.Match) -> str:
        formula = re.sub(r"\s*\n\s*", " ", match[1].strip())
        return rf"\({formula}\)"

    return _MATH_ROLE.sub(inline, text)


def _summary(obj: griffe.Object) -> str:
    """The first paragraph of the docstring of ``obj``, on one line."""
    if obj.docstring is None:
        return ""
    return " ".join(obj.docstring.value.strip().split("\n\n", 1)[0].split())


def _summarise_exports(pkg: griffe.Module) -> None:
    sections = {"Functions": [], "Modules": []}
    for name in map(str, pkg.exports or ()):
        member = pkg.members[name]
        target = member.final_target if member.is_alias else member
        kind = "Modules" if target.is_module else "Functions"
        sections[kind].append(f"  {name}: {_summary(target)}")
    text = pkg.docstring.value.rstrip() if pkg.docstring else ""
    for title, items in sections.items():
        if items:
            text += f"\n\n{title}:\n" + "\n".join(items)
    if pkg.docstring is None:
        pkg.docstring = griffe.Docstring(text, parent=pkg)
    else:
        pkg.docstring.value = text


class RestructuredTextDocstrings(griffe.Extension):
    """Rewrites the docstrings of a loaded package from reStructuredText notation to Markdown."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs) -> None:
        self._collection = loader.modules_collection
        self._package = pkg.path
        _summarise_exports(pkg)
        self._rewrite(pkg, seen=set())

    def _rewrite(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            # Inline formulas first: joined onto one line, none can start a line of the blocks.
            text = _blocks(_math_roles(obj.docstring.value))
            obj.docstring.value = _XREF_ROLE.sub(lambda m: self._link(m, obj), text)
        for member in obj.members.values():
            if not member.is_alias:
                self._rewrite(member, seen)

    def _find(self, target: str, scope: griffe.Object | None) -> griffe.Object | None:
        """``target`` as written, or relative to ``scope`` and its parents."""
        candidates = [target]
        while scope is not None:
            candidates.append(f"{scope.path}.{target}")
            scope = scope.parent
        for path in candidates:
            try:
                found = self._collection[path]
                # An inherited member is documented under the class that inherits it.
                return found.final_target if found.is_alias and not found.inherited else found
            except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
                continue
        return None

    def _documented(self, obj: griffe.Object) -> bool:
        """Whether ``obj`` has an anchor on the site: public all the way up, in a documented
        module."""
        parts = obj.path.split(".")
        if parts[0] != self._package:
            return False
        if len(parts) > 1 and parts[1] not in DOCUMENTED_MODULES:
            return False
        node = obj
        while node is not None and node.parent is not None:
            if not node.is_public:
                return False
            node = node.parent
        return True

    def _link(self, match: re.Match, context: griffe.Object) -> str:
        role, target = match[1], match[2].strip()
        short = target.startswith("~")
        target = target.lstrip("~").removesuffix("()")
        label = target.rsplit(".", 1)[-1] if short else target
        if role in ("func", "meth"):
            label += "()"
        scope = context if context.is_class or context.is_module else context.parent
        found = self._find(target, scope)
        if found is None or not self._documented(found):
            return f"``{label}``"
        return f"[``{label}``][{found.path}]"
