#!/usr/bin/env python3
"""Cross-check of MiniGPT's tokenizer.json with Hugging Face `tokenizers` (pip install tokenizers).

    python3 Tests/reference/hf_tokenizer_check.py TOKENIZER_JSON CORPUS                 # prints HF's ids as JSON
    python3 Tests/reference/hf_tokenizer_check.py TOKENIZER_JSON CORPUS --expect IDS    # compares with IDS (a JSON array)
    python3 Tests/reference/hf_tokenizer_check.py TOKENIZER_JSON CORPUS --splits        # HF pre-tokenizer chunk lengths in bytes
    python3 Tests/reference/hf_tokenizer_check.py TOKENIZER_JSON CORPUS --resave OUT    # HF writes the tokenizer back to OUT

CORPUS is a UTF-8 text file encoded as one string. HF is asked not to match special-token strings in the
text (`encode_special_tokens = True`), as MiniGPT never produces special ids from text. With --expect the
script also checks HF's vocab size, that HF decodes the ids back to the corpus, and prints one line:
`ok tokens=N vocab=V` (exit 0) or the first mismatch with context (exit 1). Exit 2: `tokenizers` missing
or unusable file.
"""

import json
import sys


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        from tokenizers import Tokenizer
    except ImportError as e:
        print(f"cannot import tokenizers ({e}): pip install tokenizers", file=sys.stderr)
        return 2
    path, corpus_path = args[0], args[1]
    try:
        tok = Tokenizer.from_file(path)
    except Exception as e:  # noqa: BLE001 - any load failure is the answer
        print(f"Tokenizer.from_file({path}) failed: {e}", file=sys.stderr)
        return 2
    if hasattr(tok, "encode_special_tokens"):
        tok.encode_special_tokens = True
    if "--resave" in args:
        tok.save(args[args.index("--resave") + 1])
        print("saved")
        return 0

    with open(corpus_path, "rb") as f:
        text = f.read().decode("utf-8")  # HF takes text: the corpus must be valid UTF-8

    if "--splits" in args:
        pieces = tok.pre_tokenizer.pre_tokenize_str(text)
        # Each byte-level character stands for one byte, so a piece's length is its byte count.
        print(json.dumps([len(p) for p, _ in pieces]))
        return 0

    ids = tok.encode(text, add_special_tokens=False).ids
    if "--expect" not in args:
        print(json.dumps(ids))
        return 0

    with open(args[args.index("--expect") + 1]) as f:
        expected = json.load(f)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    if ids != expected:
        i = next((k for k, (a, b) in enumerate(zip(ids, expected)) if a != b), min(len(ids), len(expected)))
        lo = max(0, i - 5)
        show = lambda xs: [(x, tok.id_to_token(x)) for x in xs[lo:i + 5]]  # noqa: E731
        print(f"MISMATCH at token {i} (hf {len(ids)} tokens, ours {len(expected)}):\n"
              f"  hf:   {show(ids)}\n  ours: {show(expected)}")
        return 1
    decoded = tok.decode(ids, skip_special_tokens=False)
    if decoded != text:
        k = next((k for k, (a, b) in enumerate(zip(decoded, text)) if a != b), min(len(decoded), len(text)))
        print(f"MISMATCH: HF decode differs from the corpus at char {k}: {decoded[k:k + 20]!r} vs {text[k:k + 20]!r}")
        return 1
    print(f"ok tokens={len(ids)} vocab={vocab}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
