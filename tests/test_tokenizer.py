"""Tokenizers: quantizer contract, straight-through gradients, shared hand codebook, missing ids, save/load."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from signbest.config import load_config, section
from signbest.data import SignDataset
from signbest.models.quantizer import MISSING, VectorQuantizer, codebook_stats
from signbest.models.kmeans_tokenizer import KMeansTokenizer
from signbest.models.tokenizer import TokenizerConfig
from signbest.models.vq_tokenizer import VQTokenizer
from signbest.tokens import evaluate_tokenizer, frame_pool, load_tokenizer
from signbest.train.tokenizer import train_tokenizer


def _frames(synth_dir, n=512):
    frames = frame_pool([SignDataset(synth_dir / "manifest.csv", split="train", progress=False)])
    return {k: v[:n] for k, v in frames.items()}


def test_quantizer_eval_round_trip_and_missing_rows():
    torch.manual_seed(0)
    vq = VectorQuantizer(16, 8).eval()
    z = torch.randn(10, 8)
    valid = torch.tensor([True] * 7 + [False] * 3)
    q, idx, loss = vq(z, valid)
    assert idx.shape == (10,) and (idx[7:] == MISSING).all() and (idx[:7] >= 0).all()
    torch.testing.assert_close(vq.indices_to_codes(idx), q)  # codes from indices == quantized output
    assert (q[7:] == 0).all()
    # Missing rows change neither the loss nor the ids of the others.
    q2, idx2, loss2 = vq(z[:7])
    torch.testing.assert_close(loss, loss2)
    assert torch.equal(idx[:7], idx2)


def test_straight_through_gradient_reaches_the_encoder():
    vq = VectorQuantizer(16, 8)
    z = torch.randn(5, 8, requires_grad=True)
    q, _, _ = vq(z)
    (g,) = torch.autograd.grad((q * torch.arange(8.0)).sum(), z)
    torch.testing.assert_close(g, torch.arange(8.0).expand(5, 8))  # gradient copied unchanged


def test_dead_codes_are_revived():
    vq = VectorQuantizer(32, 4).train()
    z = torch.randn(64, 4) * 0.01 + 5.0  # every input near one point: most codes unused
    vq(z)
    n = vq.revive_dead_codes(z)
    assert n > 0 and (vq.codebook - 5.0).abs().max() < 1.0


def test_codebook_stats():
    s = codebook_stats(torch.tensor([0, 0, 1, 1, -1]), 4)
    assert s["usage"] == 0.5 and abs(s["perplexity"] - 2.0) < 1e-5


@pytest.mark.parametrize("kind", ["coupled", "separate"])
def test_vq_tokenizer_loss_falls_and_both_hands_share_one_codebook(synth_dir, kind):
    cfg = section(load_config("tiny", [f"tokenizer.kind={kind}"]), "tokenizer", TokenizerConfig)
    torch.manual_seed(0)
    tok = VQTokenizer(cfg)
    frames = _frames(synth_dir)
    opt = torch.optim.Adam(tok.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss, aux = tok(frames)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert not hasattr(tok, "left_quantizer")
    left, right, body = tok.tokenize(frames)
    assert left.max() < cfg.hand_codes and right.max() < cfg.hand_codes and body.max() < cfg.body_codes
    # The same hand pose in either hand slot gets the same id: one encoder, one codebook.
    swapped = dict(frames, left=frames["right"], left_mask=frames["right_mask"])
    l2, _, _ = tok.tokenize(swapped)
    assert torch.equal(l2, right)


def test_missing_parts_get_the_reserved_id(synth_dir):
    tok = VQTokenizer(section(load_config("tiny"), "tokenizer", TokenizerConfig))
    frames = _frames(synth_dir, 64)
    frames["left_mask"][:10] = False
    ids = tok.tokenize(frames)
    assert (ids[0][:10] == MISSING).all()
    assert (ids[0][frames["left_mask"].any(-1)] >= 0).all()
    # Sequences (B, T) with padding: padded frames are missing too.
    seq = {k: v[:64].reshape(4, 16, *v.shape[1:]) for k, v in frames.items()}
    seq["frame_mask"] = torch.ones(4, 16, dtype=torch.bool)
    seq["frame_mask"][:, 12:] = False
    left, right, body = tok.tokenize(seq)
    assert left.shape == (4, 16) and (body[:, 12:] == MISSING).all()


def test_kmeans_tokenizer_fits_clusters(synth_dir):
    cfg = section(load_config("tiny", ["tokenizer.kind=kmeans"]), "tokenizer", TokenizerConfig)
    tok = KMeansTokenizer(cfg)
    frames = _frames(synth_dir, 2048)
    inertia = tok.fit(frames, torch.Generator().manual_seed(0))
    m = evaluate_tokenizer(tok, frames)
    assert m["hand_usage"] > 0.9 and m["body_usage"] > 0.9  # Lloyd's with re-seeding leaves no empty cluster
    assert inertia["hand"] > 0 and m["rec_px_right"] < 40


@pytest.mark.parametrize("kind", ["coupled", "kmeans"])
def test_train_save_reload_gives_identical_ids(synth_dir, tmp_path, kind):
    cfg = load_config("tiny", [f"tokenizer.kind={kind}"])
    result = train_tokenizer(cfg, [synth_dir / "manifest.csv"], tmp_path, progress=False)
    assert {"rec_px_left", "hand_usage", "body_perplexity"} <= set(result)
    assert (tmp_path / "checkpoint" / "model.safetensors").exists() and (tmp_path / "checkpoint" / "config.json").exists()
    tok = load_tokenizer(tmp_path)
    frames = _frames(synth_dir, 256)
    a, b = tok.tokenize(frames), load_tokenizer(tmp_path).tokenize(frames)
    for x, y in zip(a, b):
        assert torch.equal(x, y)


def test_tokenize_writes_ids_aligned_with_clips(synth_dir, tmp_path):
    from signbest.tokens import tokenize_dataset

    train_tokenizer(load_config("tiny", ["tokenizer.kind=kmeans"]), [synth_dir / "manifest.csv"], tmp_path / "tok",
                    progress=False)
    path = tokenize_dataset(tmp_path / "tok", synth_dir / "manifest.csv", tmp_path / "ids.npz")
    z = np.load(path)
    ds = SignDataset(synth_dir / "manifest.csv", progress=False)
    assert list(z["clip_ids"]) == [c.clip_id for c in ds.clips]
    assert z["offsets"][-1] == len(z["left"]) == len(z["body"]) == sum(len(ds.clip_arrays(i)["body"]) for i in range(len(ds)))
    first = ds.clip_arrays(0)
    s, e = z["offsets"][:2]
    assert ((z["left"][s:e] >= 0) == first["left_mask"].any(-1)).all()  # missing hands get the reserved id


@pytest.mark.parametrize("kind", ["coupled", "separate", "kmeans"])
def test_one_interface_for_every_tokenizer(synth_dir, kind):
    """encode -> (codes, indices, loss), decode(indices) -> joints, codebook_sizes: the same for every kind,
    on (B, T) sequences with padding and a missing hand."""
    from signbest.models.tokenizers import TOKENIZERS, build_tokenizer
    from signbest.pose.sequence import PART_SIZES, PARTS

    cfg = section(load_config("tiny", [f"tokenizer.kind={kind}"]), "tokenizer", TokenizerConfig)
    torch.manual_seed(0)
    tok = build_tokenizer(cfg).eval()
    assert isinstance(tok, TOKENIZERS[kind])
    frames = _frames(synth_dir, 512)
    if kind == "kmeans":
        tok.fit(frames, torch.Generator().manual_seed(0))
    seq = {k: v[:96].reshape(6, 16, *v.shape[1:]).clone() for k, v in frames.items()}
    seq["frame_mask"] = torch.ones(6, 16, dtype=torch.bool)
    seq["frame_mask"][:, 13:] = False
    seq["left_mask"][0] = False
    with torch.no_grad():
        codes, indices, loss = tok.encode(seq)
        joints = tok.decode(indices)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert tok.codebook_sizes == {"left": cfg.hand_codes, "right": cfg.hand_codes, "body": cfg.body_codes}
    for p in PARTS:
        present = seq[f"{p}_mask"].any(-1) & seq["frame_mask"]
        assert indices[p].shape == (6, 16) and indices[p].dtype == torch.long
        assert (indices[p][~present] == MISSING).all() and (indices[p][present] >= 0).all()
        assert (indices[p] < tok.codebook_sizes[p]).all()
        assert codes[p].shape[:2] == (6, 16) and (codes[p][~present] == 0).all()
        assert joints[p].shape == (6, 16, PART_SIZES[p], 2)
    assert all(torch.equal(a, indices[p]) for a, p in zip(tok.tokenize(seq), PARTS))
    if kind == "kmeans":  # a centroid's own joints come back to the same id: decode is encode's inverse
        again = {**{p: joints[p] for p in PARTS}, **{f"{p}_mask": torch.ones(6, 16, PART_SIZES[p], dtype=torch.bool) for p in PARTS}}
        _, ids2, _ = tok.encode(again)
        present = indices["right"] >= 0
        assert torch.equal(ids2["right"][present], indices["right"][present])
    else:  # the codes are the codebook's vectors at the indices (vector-quantize-pytorch's round trip)
        assert torch.allclose(codes["body"], tok.body_quantizer.indices_to_codes(indices["body"]))
