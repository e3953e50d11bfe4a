"""WordPiece tokenisation for text models (BERT-style vocabularies, one token per line)."""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["WordPiece", "load_wordpiece"]

MAX_WORD_CHARS = 100


def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class WordPiece:
    """Basic splitting (whitespace, punctuation, CJK, optional lowercasing and accent stripping)
    followed by greedy longest-match-first WordPiece with ``##`` continuation pieces."""

    def __init__(self, vocab: list[str], *, lowercase: bool = True) -> None:
        self.vocab = {tok: i for i, tok in enumerate(vocab)}
        self.lowercase = lowercase
        for special in ("[UNK]", "[CLS]", "[SEP]", "[PAD]"):
            if special not in self.vocab:
                raise ValueError(f"vocabulary has no {special} token")
        self.unk, self.cls, self.sep, self.pad = (self.vocab[t] for t in ("[UNK]", "[CLS]", "[SEP]", "[PAD]"))

    def words(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFC", text)
        if self.lowercase:
            text = unicodedata.normalize("NFD", text.lower())
            text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        out: list[str] = []
        cur: list[str] = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or (unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\t\n\r"):
                continue
            if ch.isspace():
                if cur:
                    out.append("".join(cur))
                    cur = []
            elif _is_punct(ch) or _is_cjk(cp):
                if cur:
                    out.append("".join(cur))
                    cur = []
                out.append(ch)
            else:
                cur.append(ch)
        if cur:
            out.append("".join(cur))
        return out

    def pieces(self, word: str) -> list[int]:
        if len(word) > MAX_WORD_CHARS:
            return [self.unk]
        ids: list[int] = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            ids.append(found)
            start = end
        return ids

    def encode(self, text: str, length: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
        """``[CLS] pieces [SEP]`` padded/truncated to ``length``: (ids, attention mask)."""
        ids = [self.cls]
        for word in self.words(text):
            ids.extend(self.pieces(word))
            if len(ids) >= length - 1:
                break
        ids = [*ids[: length - 1], self.sep]
        out = np.full(length, self.pad, dtype=np.int32)
        out[: len(ids)] = ids
        mask = np.zeros(length, dtype=np.int32)
        mask[: len(ids)] = 1
        return out, mask


@lru_cache(maxsize=16)
def load_wordpiece(path: str, lowercase: bool) -> WordPiece:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return WordPiece([line.rstrip("\r") for line in lines], lowercase=lowercase)
