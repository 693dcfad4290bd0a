#!/usr/bin/python3
"""Boundary invariants of CONTRIBUTING.md "The C/C++ boundary" that a parser can check:

 - every function Postgres calls back (index AM routines, hooks, transaction and memory-context
   callbacks, exit callbacks) is defined noexcept in the bridge: a C++ exception escaping into
   Postgres' C frames would be undefined behaviour; noexcept turns it into std::terminate at
   the boundary, and the compiler refuses a noexcept callback that calls a throwing lambda
   unguarded only at run time, so this is the written contract;
 - std:: containers appear in bridge folders only inside the "island" functions (names ending
   in Island), which run the C++ algorithms, catch every exception and copy results into plain
   memory before any Postgres call can raise.
"""
import pathlib
import re
import sys

BRIDGE = ["pg", "keys", "auth", "vault", "type", "index", "admin"]
CALLBACK_PATTERNS = [
    re.compile(r"\bam->am\w+ = (\w+);"),
    re.compile(r"\bRegister(?:Sub)?XactCallback\((\w+)"),
    re.compile(r"\.func = (\w+);"),
    re.compile(r"\.poll = (\w+);"),
    re.compile(r"\b\w+_hook = (\w+);"),
    re.compile(r"\b(?:before_shmem_exit|on_shmem_exit|on_proc_exit)\((\w+)"),
]
CONTAINERS = re.compile(
    r"\bstd::(vector|string|map|unordered_map|set|unordered_set|deque|list|unique_ptr|"
    r"shared_ptr|function|priority_queue)\b")
DEFINITION = re.compile(r"^([A-Za-z_]\w*)\(", re.M)


def definition_of(text, name):
    """The text from a top-level definition of name up to its opening brace, or None."""
    for m in re.finditer(r"^" + re.escape(name) + r"\(", text, re.M):
        end = text.find("\n{", m.start())
        semi = text.find(";", m.start())
        if end != -1 and (semi == -1 or end < semi):
            return text[m.start():end]
    return None


def main():
    root = pathlib.Path(__file__).resolve().parent.parent / "src"
    failures = []
    files = [p for d in BRIDGE for p in sorted((root / d).glob("*.cpp"))]
    texts = {p: p.read_text() for p in files}
    for path, text in texts.items():
        rel = path.relative_to(root.parent)
        for pattern in CALLBACK_PATTERNS:
            for m in pattern.finditer(text):
                name = m.group(1)
                if not re.match(r"^(?:[A-Z][a-z]\w*|hnsw_\w+)$", name) or name == "InvalidOid":
                    continue
                head = definition_of(text, name)
                if head is None:
                    head = next((definition_of(t, name) for t in texts.values()
                                 if definition_of(t, name) is not None), None)
                if head is None:
                    failures.append(f"{rel}: callback {name}: definition not found")
                elif "noexcept" not in head.split(")")[-1] and not head.rstrip().endswith("noexcept"):
                    failures.append(f"{rel}: callback {name} is not noexcept")
        for lineno, line in enumerate(text.splitlines(), 1):
            if not CONTAINERS.search(line) or line.lstrip().startswith(("/*", "*", "//")):
                continue
            before = text[:sum(len(l) + 1 for l in text.splitlines()[:lineno - 1])]
            fns = DEFINITION.findall(before)
            fn = fns[-1] if fns else "<file scope>"
            if not fn.endswith("Island"):
                failures.append(f"{rel}:{lineno}: std:: container outside an island function ({fn})")
    for f in sorted(set(failures)):
        print(f)
    if failures:
        print("see CONTRIBUTING.md, The C/C++ boundary")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
