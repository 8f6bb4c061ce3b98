"""Cross-frame attention for the pix2pix backend (--cross-frame), in the manner of
Text2Video-Zero: in the UNet's self-attention layers (attn1), every frame's queries
attend to the keys and values of the clip's ANCHOR frame (its first) instead of
its own, so every frame borrows the anchor's appearance. Cross-attention to the
text (attn2) is left alone.

    anchors = Anchors()                                   # one per clip; clear() for the next
    processors = anchors.processors(unet, groups=ip2p.branches(guidance, image_guidance))  # once
    with installed(unet, processors):
        ip2p.denoise(unet, ..., on_step=anchors.at)

Batch layout: under guidance the UNet sees [text | image | none] blocks, each in
frame order (ip2p.py; [text | image] at image guidance 1), so `groups` must be the
number of branches and each block has its own anchor (frame 0 of the block);
without guidance, 1. A wrong value runs silently and
mixes branches. The anchor is kept ACROSS batches: the first batch of a clip
records frame 0's keys/values per (layer, timestep); every later batch reuses
them, so the anchor stays the clip's first frame whatever the batching.

Memory: the store holds, per self-attention layer and per denoising step, keys
and values of one frame for each guidance branch: layers x steps x 3 x 2 x
(tokens x channels). Full-size SD1.5 at 512x512 has 16 attn1 layers totalling
~11.6 M token-channels, so ~140 MB a step in fp16, ~2.8 GB at 20 steps; the tiny
test model, a few MB.

Under --compile the processors are made once per backend, so a compiled UNet sees the same
ones on every batch, and the store is read and written outside the traced graph
(torch.compiler.disable): the timestep is Python state, and a graph that read it would be
recompiled for each step. Each self-attention layer is then a graph break, not a recompile.

torch is imported lazily; this module is only imported by the pix2pix backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class Anchors:
    """The clip's anchor keys/values, keyed by (layer name, timestep); the timestep is
    set by the UNet wrapper from track()."""

    def __init__(self) -> None:
        self.store: dict[tuple[str, float], tuple[Any, Any]] = {}
        self.timestep: float | None = None

    def clear(self) -> None:
        """A new clip: its first frame becomes the anchor."""
        self.store.clear()
        self.timestep = None

    def at(self, timestep: float) -> None:
        """The timestep the next UNet call runs (ip2p.denoise's on_step)."""
        self.timestep = timestep

    def processors(self, unet: Any, groups: int) -> dict[str, Any]:
        """The UNet's attention processors with CrossFrameAttention on every attn1."""
        return {name: CrossFrameAttention(name, self, groups) if name.endswith("attn1.processor") else processor
                for name, processor in unet.attn_processors.items()}


class CrossFrameAttention:
    """An attn1 processor (diffusers AttnProcessor2_0, with scaled_dot_product_attention)
    whose keys/values come from each guidance block's anchor frame."""

    def __init__(self, name: str, anchors: Anchors, groups: int) -> None:
        self.name, self.anchors, self.groups = name, anchors, groups

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None,
                 attention_mask: Any = None, temb: Any = None, *args: Any, **kwargs: Any) -> Any:
        import torch.nn.functional as F

        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channel, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channel, height * width).transpose(1, 2)
        batch = hidden_states.shape[0]
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        key, value = self._anchor(attn.to_k(hidden_states), attn.to_v(hidden_states))
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (x.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for x in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        hidden_states = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channel, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor

    def _anchor(self, key: Any, value: Any) -> tuple[Any, Any]:
        """Every frame's keys/values replaced by its block's anchor: recorded from frame 0
        of each block on the clip's first batch, read back on every later one."""
        return _outside_compile(self._anchor_eager)(key, value)

    def _anchor_eager(self, key: Any, value: Any) -> tuple[Any, Any]:
        batch, tokens, channels = key.shape
        if batch % self.groups:
            raise ValueError(f"cross-frame attention: a batch of {batch} does not split into {self.groups} blocks")
        frames = batch // self.groups
        slot = (self.name, self.anchors.timestep)
        kept = self.anchors.store.get(slot)
        if kept is None or kept[0].shape != (self.groups, tokens, channels):  # first batch, or a new frame size
            first = (key.view(self.groups, frames, tokens, channels)[:, 0].clone(),
                     value.view(self.groups, frames, tokens, channels)[:, 0].clone())
            self.anchors.store[slot] = first
        anchor_key, anchor_value = self.anchors.store[slot]
        return tuple(a[:, None].expand(-1, frames, -1, -1).reshape(batch, tokens, channels)
                     for a in (anchor_key, anchor_value))


def _outside_compile(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, run eagerly (not traced) when called inside a torch.compile'd UNet."""
    import torch

    return torch.compiler.disable(function)


@contextmanager
def installed(unet: Any, processors: dict[str, Any]) -> Iterator[None]:
    """`processors` (Anchors.processors) on `unet` for the duration, the previous ones put
    back afterwards (the loaded parts may serve other backends)."""
    before = dict(unet.attn_processors)
    unet.set_attn_processor(dict(processors))
    try:
        yield
    finally:
        unet.set_attn_processor(before)
