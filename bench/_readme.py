"""Write one benchmark's section of ``bench/README.md`` (between its begin/end markers)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def write_section(name: str, text: str, readme: Path = README) -> None:
    """Replace the ``<!-- name:begin -->`` ... ``<!-- name:end -->`` section, or append it."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    old = readme.read_text(encoding="utf-8")
    block = f"{begin}\n{text}\n{end}"
    if begin in old:
        new = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, old, flags=re.S)
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(new, encoding="utf-8")
