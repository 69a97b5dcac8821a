"""The tokenizer registry: `TokenizerConfig.kind` -> class. A new tokenizer is one file (a `PoseTokenizer`)
and one line here."""
from __future__ import annotations

from .kmeans_tokenizer import KMeansTokenizer
from .tokenizer import PoseTokenizer, TokenizerConfig
from .vq_tokenizer import VQTokenizer

TOKENIZERS: dict[str, type[PoseTokenizer]] = {
    "coupled": VQTokenizer,  # BEST: hand and body codes learned jointly
    "separate": VQTokenizer,  # the VQ baseline: each part decoded from its own code
    "kmeans": KMeansTokenizer,  # the clustering baseline
}


def build_tokenizer(cfg: TokenizerConfig) -> PoseTokenizer:
    return TOKENIZERS[cfg.kind](cfg)
