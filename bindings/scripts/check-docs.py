#!/usr/bin/env python3
"""Fails when a rustdoc link leaked into the generated bindings' docs.

uniffi copies the Rust doc comments of exported items verbatim into KDoc,
Swift `///` comments and Python docstrings, where rustdoc's link syntax
([`Foo`], [`x`](crate::y), [text](Type::method)) reads as noise. The
exported items' docs use plain words and `code` instead; this check, run by
bindings/scripts/generate.sh (and so by scripts/test), keeps it that way.

    check-docs.py GENERATED_DIR
"""
import ast
import pathlib
import re
import sys

# `[`Foo`]`, `[`x`](…)`, `[text](crate::…)`, `[x](Type::y)`, `[x]: …` refs.
LINK = re.compile(r"\[`[^`\]]*`\]|\]\((?:crate|self|super)?::|\]\([A-Za-z_][\w]*::|\]\(#|^\s*\[[^\]]+\]:\s"
                  # Rust-only doc examples (doctests) read as noise too.
                  r"|devicetrust_core|```no_run|```rust")
# Markdown links to the web are fine in docs; the check is for rustdoc paths.


def kotlin_docs(text):
    in_doc = False
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s.startswith("/**"):
            in_doc = True
        if in_doc:
            # A block may close mid-line (`*/override fun …`): only its text counts.
            yield n, s.split("*/")[0]
        if in_doc and "*/" in s:
            in_doc = False


def swift_docs(text):
    yield from kotlin_docs(text)  # uniffi writes `/** … */` blocks in Swift too
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if s.startswith("///"):
            yield n, s


def python_docs(text):
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                line = getattr(node, "lineno", 1)
                for i, s in enumerate(doc.splitlines()):
                    yield line + i, s


def main(root):
    readers = {".kt": kotlin_docs, ".swift": swift_docs, ".py": python_docs}
    problems = []
    files = 0
    for path in sorted(pathlib.Path(root).rglob("*")):
        reader = readers.get(path.suffix)
        if reader is None or path.name == "__init__.py":
            continue
        files += 1
        for n, line in reader(path.read_text(encoding="utf-8")):
            if LINK.search(line):
                problems.append(f"{path}:{n}: {line}")
    if files == 0:
        print(f"check-docs: no generated sources under {root}", file=sys.stderr)
        return 1
    if problems:
        print("rustdoc links leaked into the generated bindings' docs "
              "(use plain words and `code` in exported items' doc comments):", file=sys.stderr)
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(f"check-docs: {files} generated files, no rustdoc links in their docs")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "bindings/generated"))
