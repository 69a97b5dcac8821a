"""Data layer: manifests, the preprocessing cache, one dataset class, adapters and synthetic signs."""
from .cache import PreprocessedSet, cache_dir, preprocess
from .dataset import AugmentConfig, SignDataset, mirror_clip, sample_frames
from .manifest import Clip, Manifest, read_manifest, write_manifest

__all__ = ["AugmentConfig", "Clip", "Manifest", "PreprocessedSet", "SignDataset", "cache_dir", "mirror_clip",
           "preprocess", "read_manifest", "sample_frames", "write_manifest"]
