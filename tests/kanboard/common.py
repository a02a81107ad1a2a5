"""What both client checks share: where the server is, its token, and the README's snippets.

The server is a real `groupd serve --http`, started by scripts/kanboard-clients.sh, which passes:

- GROUPD_URL: the endpoint, e.g. http://127.0.0.1:PORT/jsonrpc.php
- GROUPD_TOKEN_FILE: the server's token file, or empty when the server has no token
"""

import atexit
import os
import pathlib
import re
import tempfile
import unittest

URL = os.environ["GROUPD_URL"]
TOKEN_FILE = os.environ.get("GROUPD_TOKEN_FILE", "")
TOKEN = pathlib.Path(TOKEN_FILE).read_text().strip() if TOKEN_FILE else ""
HAS_TOKEN = bool(TOKEN)

ROOT = pathlib.Path(__file__).resolve().parents[2]

# What the README's snippets say, and what they are run with instead.
README_URL = "http://127.0.0.1:7416/jsonrpc.php"
README_TOKEN_FILE = "kanboard.token"


def readme_section():
    """The README's "Kanboard clients" section."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Kanboard clients\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not match:
        raise AssertionError("README.md has no \"## Kanboard clients\" section")
    return match.group(1)


def readme_snippet(marker):
    """The README's one Python snippet that contains `marker`, made to run against our server."""
    blocks = re.findall(r"^```python\n(.*?)^```", readme_section(), re.M | re.S)
    chosen = [b for b in blocks if marker in b]
    if len(chosen) != 1:
        raise AssertionError(f"expected one README snippet with {marker!r}, found {len(chosen)}")
    snippet = chosen[0]
    for placeholder in (README_URL, README_TOKEN_FILE):
        if placeholder not in snippet:
            raise AssertionError(f"the README snippet no longer mentions {placeholder}")
    return snippet.replace(README_URL, URL).replace(README_TOKEN_FILE, token_file_for_snippets())


def token_file_for_snippets():
    """The server's token file; without a token, a file whose contents the server ignores."""
    if TOKEN_FILE:
        return TOKEN_FILE
    handle, path = tempfile.mkstemp(prefix="groupd-no-token-")
    os.write(handle, b"ignored\n")
    os.close(handle)
    atexit.register(os.remove, path)
    return path


def unique(name):
    """A group name no other check uses, so that checks stay independent on one server."""
    unique.counter += 1
    return f"{name} {os.getpid()}-{unique.counter}"


unique.counter = 0


def main():
    unittest.main(verbosity=2)
