"""The README's client snippets are the tested ones: every fenced block right after a
`<!-- tested: PATH -->` line must appear, character for character, in PATH; and every
interop test named on the command line must have such a block.

    python3 tests/interop/check_readme.py README.md tests/interop/jayson_tcp.js …
"""

import re
import sys
from pathlib import Path

MARKER = re.compile(r"^<!-- tested: (\S+) -->\n+```[^\n]*\n(.*?)^```$", re.S | re.M)


def main(readme, *required):
    text = Path(readme).read_text(encoding="utf-8")
    root = Path(readme).parent
    problems, covered = [], set()
    for match in MARKER.finditer(text):
        path, block = match.group(1), match.group(2)
        covered.add(path)
        source = root / path
        if not source.is_file():
            problems.append(f"{path}: no such file")
        elif block not in source.read_text(encoding="utf-8"):
            first = block.splitlines()[0] if block else ""
            problems.append(f"{path}: the README block starting {first!r} is not in the file")
    problems += [f"{path}: no tested snippet in {readme}" for path in required if path not in covered]
    for problem in problems:
        print(f"check_readme: {problem}", file=sys.stderr)
    print(f"README snippets: {len(MARKER.findall(text))} checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
