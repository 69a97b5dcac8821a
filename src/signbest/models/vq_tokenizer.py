"""The d-VAE tokenizer (paper 3.1): coupled (BEST) or separate (the VQ baseline of table 6).

- coupled: a hand encoder shared by both (mirrored) hands and a body encoder give z_l, z_r, z_b; ONE hand
  codebook quantizes both hands, a body codebook the body; one decoder reconstructs all three parts from
  Concat(h_kl, h_kr, d_kb), so hand and body codes are learned jointly.
- separate: the same encoders and codebooks, but each part is decoded from its own code alone, so hand
  and body tokenizers train independently.
"""
from __future__ import annotations

import torch

from ..pose.sequence import BODY_J, HAND_J, PARTS
from .quantizer import VectorQuantizer
from .tokenizer import PoseTokenizer, TokenizerConfig, flat_parts, mlp, part_input


class VQTokenizer(PoseTokenizer):
    def __init__(self, cfg: TokenizerConfig):
        super().__init__()
        self.cfg = cfg
        code_dim, hidden = cfg.code_dim, cfg.hidden
        self.hand_encoder = mlp(HAND_J * 3, hidden, code_dim)  # shared by both hands
        self.body_encoder = mlp(BODY_J * 3, hidden, code_dim)
        self.hand_quantizer = VectorQuantizer(cfg.hand_codes, code_dim, cfg.beta_codebook, cfg.beta_commit)
        self.body_quantizer = VectorQuantizer(cfg.body_codes, code_dim, cfg.beta_codebook, cfg.beta_commit)
        if cfg.kind == "coupled":
            self.decoder = mlp(3 * code_dim, 2 * hidden, (2 * HAND_J + BODY_J) * 2)
        else:
            self.hand_decoder = mlp(code_dim, hidden, HAND_J * 2)
            self.body_decoder = mlp(code_dim, hidden, BODY_J * 2)

    def quantizer(self, part: str) -> VectorQuantizer:
        return self.body_quantizer if part == "body" else self.hand_quantizer

    def latents(self, frames: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Flat frames (N, J, 2) with masks -> the encoders' z per part, (N, D) each."""
        hands = torch.cat([part_input(frames["left"], frames["left_mask"]),
                           part_input(frames["right"], frames["right_mask"])])
        z_left, z_right = self.hand_encoder(hands).chunk(2)
        return {"left": z_left, "right": z_right,
                "body": self.body_encoder(part_input(frames["body"], frames["body_mask"]))}

    def quantize(self, z: dict[str, torch.Tensor], frames: dict[str, torch.Tensor]):
        """z per part (N, D) -> (codes, indices, loss); both hands go through the one hand codebook."""
        valid = {p: frames[f"{p}_mask"].any(-1) for p in PARTS}
        hand_codes, hand_ids, hand_loss = self.hand_quantizer(torch.cat([z["left"], z["right"]]),
                                                              torch.cat([valid["left"], valid["right"]]))
        body_codes, body_ids, body_loss = self.body_quantizer(z["body"], valid["body"])
        left_codes, right_codes = hand_codes.chunk(2)
        left_ids, right_ids = hand_ids.chunk(2)
        codes = {"left": left_codes, "right": right_codes, "body": body_codes}
        return codes, {"left": left_ids, "right": right_ids, "body": body_ids}, hand_loss + body_loss

    def decode_codes(self, codes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Code vectors (N, D) per part -> reconstructed normalised joints (N, J, 2) per part."""
        n = codes["body"].shape[0]
        if self.cfg.kind == "coupled":
            out = self.decoder(torch.cat([codes["left"], codes["right"], codes["body"]], -1))
            left, right, body = out.split([HAND_J * 2, HAND_J * 2, BODY_J * 2], -1)
        else:
            left, right = self.hand_decoder(torch.cat([codes["left"], codes["right"]])).chunk(2)
            body = self.body_decoder(codes["body"])
        return {"left": left.reshape(n, HAND_J, 2), "right": right.reshape(n, HAND_J, 2),
                "body": body.reshape(n, BODY_J, 2)}

    def encode(self, batch: dict):
        frames, lead = flat_parts(batch)
        codes, indices, loss = self.quantize(self.latents(frames), frames)
        return ({p: codes[p].reshape(*lead, -1) for p in PARTS}, {p: indices[p].reshape(lead) for p in PARTS}, loss)

    def decode(self, indices: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        lead = indices["body"].shape
        codes = {p: self.quantizer(p).indices_to_codes(indices[p].reshape(-1)) for p in PARTS}
        return {p: joints.reshape(*lead, *joints.shape[1:]) for p, joints in self.decode_codes(codes).items()}

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """The d-VAE loss (eq. 3) and a dict with reconstructions, ids and per-part errors."""
        frames, _ = flat_parts(batch)
        z = self.latents(frames)
        codes, ids, vq_loss = self.quantize(z, frames)
        rec = self.decode_codes(codes)
        err = {}
        for p in PARTS:
            m = frames[f"{p}_mask"].to(rec[p].dtype)
            err[p] = ((rec[p].float() - frames[p]).abs().sum(-1) * m).sum() / m.sum().clamp(min=1)  # L1 per joint
        loss = err["left"] + err["right"] + self.cfg.beta_body * err["body"] + vq_loss
        return loss, {"rec": rec, "ids": ids, "z": z, "parts": frames, "vq_loss": vq_loss}
